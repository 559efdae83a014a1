/** The signed-in console: the navigation, the pages, and who is signed in. */
import { useQuery } from '@tanstack/react-query'
import { NavLink, Navigate, Route, Routes } from 'react-router'
import type { ListOf, NotificationView } from '../../src/api/contract/wire'
import { get } from './api'
import { useSession, useSignOut } from './session'
import { OverviewPage } from './pages/overview'
import { TopPage } from './pages/top'
import { EventsPage } from './pages/events'
import { BudgetsPage } from './pages/budgets'
import { WalletsPage } from './pages/wallets'
import { TicketsPage } from './pages/tickets'
import { NotificationsPage } from './pages/notifications'
import { PreferencesPage } from './pages/preferences'
import { ExportsPage } from './pages/exports'
import { ReplayPage } from './pages/replay'

/** Unread notifications are counted up to this many ("50+"). */
export const UNREAD_COUNT_MAX = 50

export function useUnreadCount() {
  return useQuery({
    queryKey: ['notifications', 'unread-count'],
    queryFn: async () => (await get<ListOf<NotificationView>>(`/v1/notifications?unread=true&limit=${UNREAD_COUNT_MAX}`)).data.length,
    refetchInterval: 15_000,
  })
}

const NAV = [
  { to: '/usage', label: 'Overview', end: true },
  { to: '/usage/top', label: 'Top spenders' },
  { to: '/usage/events', label: 'Events' },
  { to: '/usage/budgets', label: 'Budgets' },
  { to: '/wallets', label: 'Wallets' },
  { to: '/cost-tickets', label: 'Cost tickets' },
  { to: '/notifications', label: 'Notifications' },
  { to: '/exports', label: 'Exports' },
  { to: '/policy/replay', label: 'Replay' },
  { to: '/settings/notification-preferences', label: 'Preferences' },
] as const

export function App() {
  const session = useSession()
  const signOut = useSignOut()
  const unread = useUnreadCount()
  return (
    <div className="shell">
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <span className="brand">Tollgate</span>
        <nav aria-label="Console">
          <ul>
            {NAV.map((item) => (
              <li key={item.to}>
                <NavLink to={item.to} end={'end' in item ? item.end : false}>
                  {item.label}
                  {item.to === '/notifications' && unread.data ? (
                    <>
                      <span className="badge" data-testid="unread-count" aria-hidden="true">
                        {unread.data >= UNREAD_COUNT_MAX ? `${UNREAD_COUNT_MAX}+` : unread.data}
                      </span>
                      <span className="visually-hidden">{`${unread.data} unread`}</span>
                    </>
                  ) : null}
                </NavLink>
              </li>
            ))}
          </ul>
        </nav>
        <div className="who">
          <span data-testid="role">{session.role === 'team_admin' ? `team admin · ${session.team_id ?? ''}` : session.role}</span>
          <button type="button" onClick={() => signOut.mutate()} disabled={signOut.isPending}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <Routes>
          <Route path="/" element={<Navigate to="/usage" replace />} />
          <Route path="/usage" element={<OverviewPage />} />
          <Route path="/usage/top" element={<TopPage />} />
          <Route path="/usage/events" element={<EventsPage />} />
          <Route path="/usage/budgets" element={<BudgetsPage />} />
          <Route path="/wallets" element={<WalletsPage />} />
          <Route path="/cost-tickets" element={<TicketsPage />} />
          <Route path="/notifications" element={<NotificationsPage />} />
          <Route path="/settings/notification-preferences" element={<PreferencesPage />} />
          <Route path="/exports" element={<ExportsPage />} />
          <Route path="/policy/replay" element={<ReplayPage />} />
          <Route path="*" element={<NotFound />} />
        </Routes>
      </main>
    </div>
  )
}

function NotFound() {
  return (
    <section>
      <h1>Page not found</h1>
      <p>
        <NavLink to="/usage">Go to the Overview</NavLink>
      </p>
    </section>
  )
}
