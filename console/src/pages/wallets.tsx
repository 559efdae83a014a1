/**
 * Wallets (/wallets): balances per scope (allocated, spent, reserved, available), the cascade a
 * team's calls pay through (user → team → org), allocating funds, and a wallet's ledger.
 */
import { useMemo, useState, type FormEvent } from 'react'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { createColumnHelper } from '@tanstack/react-table'
import type { LedgerEntryView, ListOf, UsageReportView, WalletView } from '../../../src/api/contract/wire'
import { ApiError, api, get, query } from '../api'
import { DataTable } from '../components/data-table'
import { Field, FormError } from '../components/field'
import { formatDateTime, formatUsd, labelOf } from '../format'
import { lastDays, wireRange } from '../range'
import { useSession } from '../session'

const walletColumn = createColumnHelper<WalletView>()
const walletColumns = [
  walletColumn.accessor('scope', { header: 'Scope' }),
  walletColumn.accessor('allocated_usd', { header: 'Allocated', cell: (c) => formatUsd(c.getValue()), meta: { numeric: true } }),
  walletColumn.accessor('spent_usd', { header: 'Spent', cell: (c) => formatUsd(c.getValue()), meta: { numeric: true } }),
  walletColumn.accessor('reserved_usd', { header: 'Reserved', cell: (c) => formatUsd(c.getValue()), meta: { numeric: true } }),
  walletColumn.accessor('available_usd', {
    header: 'Available',
    cell: (c) => <span className={c.row.original.available_micros === 0 ? 'warn' : undefined}>{formatUsd(c.getValue())}</span>,
    meta: { numeric: true },
  }),
  walletColumn.display({
    id: 'used',
    header: 'Used',
    cell: (c) => {
      const w = c.row.original
      const used = w.allocated_micros > 0 ? ((w.spent_micros + w.reserved_micros) / w.allocated_micros) * 100 : 0
      return <meter min={0} max={100} low={80} high={95} optimum={0} value={used} aria-label={`${w.scope}: ${Math.round(used)}% used`} />
    },
  }),
]

const entryColumn = createColumnHelper<LedgerEntryView>()
const entryColumns = [
  entryColumn.accessor('at', { header: 'When', cell: (c) => formatDateTime(c.getValue()) }),
  entryColumn.accessor('kind', { header: 'Entry' }),
  entryColumn.accessor('amount_usd', {
    header: 'Amount',
    cell: (c) => <span className={(c.getValue() ?? 0) < 0 ? 'down' : 'up'}>{formatUsd(c.getValue())}</span>,
    meta: { numeric: true },
  }),
  entryColumn.accessor('description', { header: 'Note', cell: (c) => c.getValue() ?? (c.row.original.reservation_id ? <code>{c.row.original.reservation_id}</code> : '') }),
]

export function WalletsPage() {
  const session = useSession()
  const wallets = useQuery({ queryKey: ['wallets'], queryFn: () => get<ListOf<WalletView>>('/v1/wallets'), refetchInterval: 10_000 })
  const [selected, setSelected] = useState<string | null>(null)
  const list = wallets.data?.data ?? []
  const selectedWallet = list.find((w) => w.id === selected)
  const mayAllocate = session.role === 'admin' || session.role === 'team_admin'
  return (
    <section aria-labelledby="wallets-title">
      <h1 id="wallets-title">Wallets</h1>
      <p className="hint">Wallets are the hard control: a call reserves its worst case against the first wallet in its cascade that can cover it, user → team → org.</p>
      {wallets.isError ? <FormError error={wallets.error} /> : null}
      <div className="card">
        <h2>Balances</h2>
        <DataTable
          data={list}
          columns={walletColumns}
          caption="Wallet balances"
          initialSort={[{ id: 'scope', desc: false }]}
          empty={wallets.isPending ? 'Loading…' : 'No wallets yet.'}
          onRowClick={(w) => setSelected(w.id)}
          rowLabel={(w) => `Show the ledger of ${w.scope}`}
          selectedRow={(w) => w.id === selected}
          testId="wallets-table"
        />
      </div>
      <div className="grid-2">
        <Cascade wallets={list} />
        {mayAllocate ? <AllocateForm /> : null}
      </div>
      {selectedWallet ? <Ledger wallet={selectedWallet} onClose={() => setSelected(null)} /> : null}
    </section>
  )
}

/** Teams with a wallet or with spend in the last 30 days, and the users seen spending under each. */
function useTeamsAndUsers() {
  const range = wireRange(lastDays(30, Date.now()))
  return useQuery({
    queryKey: ['usage', 'team-users', range.from.slice(0, 10)],
    queryFn: () => get<UsageReportView>(`/v1/usage${query({ ...range, group_by: 'team,user', bucket: 'day' })}`),
    staleTime: 60_000,
  })
}

function Cascade({ wallets }: { wallets: readonly WalletView[] }) {
  const usage = useTeamsAndUsers()
  const byScope = new Map(wallets.map((w) => [w.scope, w]))
  const usersByTeam = useMemo(() => {
    const map = new Map<string, Set<string>>()
    for (const group of usage.data?.groups ?? []) {
      const team = group.key.team
      const user = group.key.user
      if (!team) continue
      const users = map.get(team) ?? new Set<string>()
      if (user) users.add(user)
      map.set(team, users)
    }
    return map
  }, [usage.data])
  const teams = [...new Set([...wallets.filter((w) => w.scope_kind === 'team').map((w) => w.scope_id), ...usersByTeam.keys()])].sort()
  const [team, setTeam] = useState<string>('')
  const current = team || teams[0] || ''
  const userWallets = [...(usersByTeam.get(current) ?? [])].map((u) => byScope.get(`user:${u}`)).filter((w): w is WalletView => w !== undefined)
  const orgWallet = wallets.find((w) => w.scope_kind === 'org')
  const steps: Array<{ label: string; wallet: WalletView | undefined }> = [
    ...(userWallets.length > 0 ? userWallets.map((w) => ({ label: w.scope, wallet: w })) : [{ label: 'user wallet', wallet: undefined }]),
    { label: `team:${current}`, wallet: byScope.get(`team:${current}`) },
    { label: orgWallet?.scope ?? 'org wallet', wallet: orgWallet },
  ]
  return (
    <div className="card" data-testid="cascade">
      <h2>Cascade</h2>
      <div className="field">
        <label htmlFor="cascade-team">Team</label>
        <select id="cascade-team" value={current} onChange={(e) => setTeam(e.target.value)}>
          {teams.map((t) => (
            <option key={t} value={t}>
              {labelOf(t)}
            </option>
          ))}
        </select>
      </div>
      <ol className="cascade">
        {steps.map((step) => (
          <li key={step.label} className={step.wallet ? (step.wallet.available_micros === 0 ? 'dry' : '') : 'missing'}>
            <span className="cascade-scope">{step.label}</span>
            <span className="cascade-available">{step.wallet ? `${formatUsd(step.wallet.available_usd)} available` : 'no wallet'}</span>
            {step.wallet ? (
              <span className="cascade-detail">
                {formatUsd(step.wallet.spent_usd)} spent · {formatUsd(step.wallet.reserved_usd)} reserved
              </span>
            ) : null}
          </li>
        ))}
      </ol>
      <p className="hint">A call tries each wallet in turn; the first that can cover its worst case pays. User wallets shown are those of users seen in this team in the last 30 days.</p>
    </div>
  )
}

function AllocateForm() {
  const session = useSession()
  const client = useQueryClient()
  const teamLocked = session.role === 'team_admin'
  const [kind, setKind] = useState<'team' | 'user' | 'org'>('team')
  const [id, setId] = useState(teamLocked ? (session.team_id ?? '') : '')
  const [amount, setAmount] = useState('')
  const [description, setDescription] = useState('')
  const allocate = useMutation({
    mutationFn: () =>
      api<WalletView>('POST', '/v1/wallets/allocate', {
        ...(kind === 'org' ? { org_id: session.org_id } : { [`${kind}_id`]: id.trim() }),
        amount: amount.trim(),
        currency: 'USD',
        ...(description.trim() ? { description: description.trim() } : {}),
      }),
    onSuccess: async () => {
      setAmount('')
      setDescription('')
      await client.invalidateQueries({ queryKey: ['wallets'] })
      await client.invalidateQueries({ queryKey: ['ledger'] })
    },
  })
  const error = allocate.error instanceof ApiError ? allocate.error : undefined
  const submit = (event: FormEvent) => {
    event.preventDefault()
    allocate.mutate()
  }
  return (
    <form className="card" onSubmit={submit} aria-labelledby="allocate-title" noValidate>
      <h2 id="allocate-title">Allocate funds</h2>
      <div className="form-grid">
        <Field label="Wallet scope" error={undefined}>
          {(p) => (
            <select {...p} value={kind} disabled={teamLocked} onChange={(e) => setKind(e.target.value as typeof kind)}>
              <option value="team">team</option>
              <option value="user">user</option>
              <option value="org">org</option>
            </select>
          )}
        </Field>
        {kind === 'org' ? null : (
          <Field label={kind === 'team' ? 'Team id' : 'User id'} error={error?.issueAt('team_id') ?? error?.issueAt('user_id')}>
            {(p) => <input {...p} value={id} readOnly={teamLocked} onChange={(e) => setId(e.target.value)} />}
          </Field>
        )}
        <Field label="Amount (USD)" error={error?.issueAt('amount')}>
          {(p) => <input {...p} inputMode="decimal" value={amount} onChange={(e) => setAmount(e.target.value)} placeholder="100" />}
        </Field>
        <Field label="Description (optional)" error={error?.issueAt('description')}>
          {(p) => <input {...p} value={description} onChange={(e) => setDescription(e.target.value)} />}
        </Field>
      </div>
      {error && error.issues.length === 0 ? <FormError error={error} /> : null}
      {allocate.isSuccess ? (
        <p className="ok" role="status">
          Allocated. {allocate.data.scope} now has {formatUsd(allocate.data.available_usd)} available.
        </p>
      ) : null}
      <button type="submit" className="primary" disabled={allocate.isPending}>
        Allocate
      </button>
    </form>
  )
}

function Ledger({ wallet, onClose }: { wallet: WalletView; onClose: () => void }) {
  const ledger = useQuery({
    queryKey: ['ledger', wallet.id],
    queryFn: () => get<{ wallet: WalletView; data: LedgerEntryView[] }>(`/v1/wallets/${wallet.id}/ledger?limit=200`),
    refetchInterval: 10_000,
  })
  return (
    <div className="card" aria-labelledby="ledger-title" data-testid="ledger">
      <div className="details-head">
        <h2 id="ledger-title">Ledger of {wallet.scope}</h2>
        <button type="button" onClick={onClose} aria-label="Close the ledger">
          ×
        </button>
      </div>
      {ledger.isError ? <FormError error={ledger.error} /> : null}
      <DataTable data={ledger.data?.data ?? []} columns={entryColumns} caption={`Ledger entries of ${wallet.scope}, newest first`} empty={ledger.isPending ? 'Loading…' : 'No entries.'} />
    </div>
  )
}
