/**
 * The usage filters the Overview, Top and Events pages share, kept in the URL so a view can be
 * linked and survives a reload: date range, environment, data mode (real / demo).
 */
import { useMemo } from 'react'
import { useSearchParams } from 'react-router'
import { useQuery } from '@tanstack/react-query'
import type { UsageReportView } from '../../../src/api/contract/wire'
import { get, query } from '../api'
import { lastDays, rangeFromParams, wireRange, type DayRange } from '../range'
import { labelOf } from '../format'

export const DEFAULT_RANGE_DAYS = 7

export interface UsageFilters {
  readonly range: DayRange
  readonly environment: string
  readonly dataMode: '' | 'real' | 'demo'
  set(changes: Record<string, string>): void
  /** from/to/environment/data_mode for the API. */
  readonly wire: Record<string, string | undefined>
}

export function useUsageFilters(): UsageFilters {
  const [params, setParams] = useSearchParams()
  return useMemo(() => {
    const range = rangeFromParams(params, lastDays(DEFAULT_RANGE_DAYS, Date.now()))
    const environment = params.get('environment') ?? ''
    const rawMode = params.get('data_mode')
    const dataMode = rawMode === 'real' || rawMode === 'demo' ? rawMode : ''
    const set = (changes: Record<string, string>) => {
      const next = new URLSearchParams(params)
      for (const [key, value] of Object.entries(changes)) {
        if (value === '') next.delete(key)
        else next.set(key, value)
      }
      setParams(next, { replace: true })
    }
    const wire = { ...wireRange(range), environment: environment || undefined, data_mode: dataMode || undefined }
    return { range, environment, dataMode, set, wire }
  }, [params, setParams])
}

/** Environments that have spend in the range, for the environment filter. */
function useEnvironments(filters: UsageFilters): string[] {
  const { from, to, data_mode } = filters.wire
  const result = useQuery({
    queryKey: ['usage', 'environments', from, to, data_mode],
    queryFn: () => get<UsageReportView>(`/v1/usage${query({ from, to, data_mode, group_by: 'environment', bucket: 'day' })}`),
    staleTime: 60_000,
  })
  const known = (result.data?.groups ?? []).map((g) => g.key.environment).filter((e): e is string => typeof e === 'string')
  return filters.environment && !known.includes(filters.environment) ? [...known, filters.environment] : known
}

export function FilterBar({ filters, children }: { readonly filters: UsageFilters; readonly children?: React.ReactNode }) {
  const environments = useEnvironments(filters)
  const presets = [1, 7, 30, 90]
  return (
    <form className="filters" aria-label="Filters" onSubmit={(e) => e.preventDefault()}>
      <div className="field">
        <label htmlFor="filter-from">From</label>
        <input
          id="filter-from"
          type="date"
          value={filters.range.from}
          max={filters.range.to}
          onChange={(e) => e.target.value && filters.set({ from: e.target.value, to: filters.range.to })}
        />
      </div>
      <div className="field">
        <label htmlFor="filter-to">To</label>
        <input
          id="filter-to"
          type="date"
          value={filters.range.to}
          min={filters.range.from}
          onChange={(e) => e.target.value && filters.set({ from: filters.range.from, to: e.target.value })}
        />
      </div>
      {/* biome-ignore lint/a11y/useSemanticElements: a row of toggle buttons, not a form section; a fieldset would bring its own layout */}
      <div className="field presets" role="group" aria-label="Quick ranges">
        <span className="label">Last</span>
        <div className="segmented">
          {presets.map((days) => {
            const preset = lastDays(days, Date.now())
            const active = preset.from === filters.range.from && preset.to === filters.range.to
            return (
              <button key={days} type="button" aria-pressed={active} onClick={() => filters.set({ from: preset.from, to: preset.to })}>
                {days === 1 ? 'Today' : `${days} d`}
              </button>
            )
          })}
        </div>
      </div>
      <div className="field">
        <label htmlFor="filter-environment">Environment</label>
        <select id="filter-environment" value={filters.environment} onChange={(e) => filters.set({ environment: e.target.value })}>
          <option value="">All</option>
          {environments.map((env) => (
            <option key={env} value={env}>
              {labelOf(env)}
            </option>
          ))}
        </select>
      </div>
      <div className="field">
        <label htmlFor="filter-data-mode">Data</label>
        <select id="filter-data-mode" value={filters.dataMode} onChange={(e) => filters.set({ data_mode: e.target.value })}>
          <option value="">Real and demo</option>
          <option value="real">Real only</option>
          <option value="demo">Demo only</option>
        </select>
      </div>
      {children}
    </form>
  )
}
