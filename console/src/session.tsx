/**
 * Who is signed in. The session lives in an httpOnly cookie the page cannot read; `GET
 * /v1/session` says whose it is and hands back the CSRF value for writes. Without a session the
 * console shows the sign-in form; any 401 later (expiry, sign-out elsewhere) brings it back.
 */
import { createContext, useContext, useState, type FormEvent, type ReactNode } from 'react'
import { useMutation, useQuery, useQueryClient, type QueryClient } from '@tanstack/react-query'
import type { SessionView } from '../../src/api/contract/wire'
import { ApiError, api, setCsrfToken } from './api'
import { Field, FormError } from './components/field'

const SessionContext = createContext<SessionView | null>(null)

export const SESSION_KEY = ['session'] as const

export function useSession(): SessionView {
  const session = useContext(SessionContext)
  if (session === null) throw new Error('useSession outside a signed-in console')
  return session
}

/** Writes need admin, or team_admin acting on its own team (the API enforces the same). */
export function canWrite(session: SessionView, teamId?: string | null): boolean {
  if (session.role === 'admin') return true
  if (session.role !== 'team_admin') return false
  return teamId !== undefined && teamId !== null && teamId === session.team_id
}

export function SessionGate({ children }: { readonly children: ReactNode }) {
  const session = useQuery({
    queryKey: SESSION_KEY,
    queryFn: async () => {
      try {
        const view = await api<SessionView>('GET', '/v1/session')
        setCsrfToken(view.csrf_token)
        return view
      } catch (error) {
        if (error instanceof ApiError && error.status === 401) return null
        throw error
      }
    },
    staleTime: 60_000,
  })
  if (session.isPending) return <p className="loading">Loading…</p>
  if (session.isError) return <FormError error={session.error} />
  if (session.data === null || session.data === undefined) return <SignIn />
  return <SessionContext.Provider value={session.data}>{children}</SessionContext.Provider>
}

function SignIn() {
  const client = useQueryClient()
  const [token, setToken] = useState('')
  const signIn = useMutation({
    mutationFn: (value: string) => api<SessionView>('POST', '/v1/session', { token: value }),
    onSuccess: (view) => {
      setCsrfToken(view.csrf_token)
      setToken('')
      forgetEverythingButSession(client)
      client.setQueryData(SESSION_KEY, view)
    },
  })
  const submit = (event: FormEvent) => {
    event.preventDefault()
    signIn.mutate(token.trim())
  }
  const error = signIn.error instanceof ApiError ? signIn.error : undefined
  return (
    <main className="sign-in">
      <form onSubmit={submit} aria-labelledby="sign-in-title" className="card">
        <h1 id="sign-in-title">Tollgate console</h1>
        <p>Sign in with an admin token. It is exchanged for a session cookie and is not kept in this browser.</p>
        <Field label="Admin token" error={error?.status === 401 ? 'This token is not known to the gateway.' : error?.issueAt('token')}>
          {(props) => <input {...props} type="password" autoComplete="off" value={token} onChange={(e) => setToken(e.target.value)} required />}
        </Field>
        {signIn.error && !(signIn.error instanceof ApiError && (signIn.error.status === 401 || signIn.error.issueAt('token'))) ? (
          <FormError error={signIn.error} />
        ) : null}
        <button type="submit" className="primary" disabled={signIn.isPending || token.trim().length === 0}>
          {signIn.isPending ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  )
}

/**
 * Another person's data must not flash on screen after a sign-in or sign-out: drop every cached
 * answer but the session's own (its observer stays subscribed, so the gate re-renders).
 */
function forgetEverythingButSession(client: QueryClient): void {
  client.removeQueries({ predicate: (query) => query.queryKey[0] !== SESSION_KEY[0] })
}

export function useSignOut() {
  const client = useQueryClient()
  return useMutation({
    mutationFn: () => api<void>('DELETE', '/v1/session'),
    onSettled: () => {
      setCsrfToken(null)
      forgetEverythingButSession(client)
      client.setQueryData(SESSION_KEY, null)
    },
  })
}
