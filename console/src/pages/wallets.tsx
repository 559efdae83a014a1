/**
 * Wallets (/wallets): balances per scope (allocated, spent, reserved, available), the cascade a
 * team's calls pay through (user → team → org), allocating funds, and a wallet's ledger.
 */
import { useState, type FormEvent } from 'react'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { createColumnHelper } from '@tanstack/react-table'
import type { LedgerEntryView, ListOf, WalletView } from '../../../src/api/contract/wire'
import { ApiError, api, get } from '../api'
import { DataTable } from '../components/data-table'
import { Field, FormError } from '../components/field'
import { formatDateTime, formatUsd, labelOf } from '../format'
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
    cell: (c) => <span className={(c.getValue() ?? 0) < 0 ? 'debit' : 'credit'}>{formatUsd(c.getValue())}</span>,
    meta: { numeric: true },
  }),
  entryColumn.accessor('description', {
    header: 'Note',
    cell: (c) => c.getValue() ?? (c.row.original.reservation_id ? <code>{c.row.original.reservation_id}</code> : ''),
  }),
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
      <p className="hint">
        Wallets are the hard control: a call reserves its worst case against the first wallet in its cascade that can cover it, user → team → org.
      </p>
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

function Cascade({ wallets }: { wallets: readonly WalletView[] }) {
  const byScope = new Map(wallets.map((w) => [w.scope, w]))
  const teams = [...new Set(wallets.map((w) => w.team_id).filter((t): t is string => t !== null))].sort()
  const [team, setTeam] = useState<string>('')
  const current = team || teams[0] || ''
  const userWallets = wallets.filter((w) => w.scope_kind === 'user' && w.team_id === current)
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
      <p className="hint">
        A call from this team tries the wallet of the user it names (one of this team&apos;s user wallets), then the team&apos;s, then the org&apos;s; the first
        that can cover its worst case pays.
      </p>
    </div>
  )
}

function AllocateForm() {
  const session = useSession()
  const client = useQueryClient()
  const teamLocked = session.role === 'team_admin'
  const [kind, setKind] = useState<'team' | 'user' | 'org'>('team')
  const [id, setId] = useState(teamLocked ? (session.team_id ?? '') : '')
  const [userTeam, setUserTeam] = useState(teamLocked ? (session.team_id ?? '') : '')
  const [amount, setAmount] = useState('')
  const [description, setDescription] = useState('')
  const allocate = useMutation({
    mutationFn: () =>
      api<WalletView>('POST', '/v1/wallets/allocate', {
        ...(kind === 'org' ? { org_id: session.org_id } : { [`${kind}_id`]: kind === 'team' && teamLocked ? (session.team_id ?? '') : id.trim() }),
        ...(kind === 'user' && userTeam.trim() ? { team_id: userTeam.trim() } : {}),
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
            <select {...p} value={kind} onChange={(e) => setKind(e.target.value as typeof kind)}>
              <option value="team">team</option>
              <option value="user">user</option>
              {teamLocked ? null : <option value="org">org</option>}
            </select>
          )}
        </Field>
        {kind === 'org' ? null : (
          <Field label={kind === 'team' ? 'Team id' : 'User id'} error={error?.issueAt(`${kind}_id`)}>
            {(p) => (
              <input
                {...p}
                value={kind === 'team' && teamLocked ? (session.team_id ?? '') : id}
                readOnly={kind === 'team' && teamLocked}
                onChange={(e) => setId(e.target.value)}
              />
            )}
          </Field>
        )}
        {kind === 'user' ? (
          <Field label="Team of the user" error={error?.issueAt('team_id')} hint="Calls through this team's keys naming the user pay from this wallet first.">
            {(p) => <input {...p} value={userTeam} readOnly={teamLocked} onChange={(e) => setUserTeam(e.target.value)} />}
          </Field>
        ) : null}
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
    <section className="card" aria-labelledby="ledger-title" data-testid="ledger">
      <div className="details-head">
        <h2 id="ledger-title">Ledger of {wallet.scope}</h2>
        <button type="button" onClick={onClose} aria-label="Close the ledger">
          ×
        </button>
      </div>
      {ledger.isError ? <FormError error={ledger.error} /> : null}
      <DataTable
        data={ledger.data?.data ?? []}
        columns={entryColumns}
        caption={`Ledger entries of ${wallet.scope}, newest first`}
        empty={ledger.isPending ? 'Loading…' : 'No entries.'}
      />
    </section>
  )
}
