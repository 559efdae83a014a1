/**
 * A sortable table on TanStack Table: the library sorts, this renders. Header buttons sort by
 * keyboard too (Enter/Space) and announce the order with aria-sort. On phone widths the table
 * scrolls sideways inside its frame instead of widening the page, and columns marked `wideOnly`
 * (detail a phone reader can do without) are left out.
 */
import { useState } from 'react'
import { flexRender, getCoreRowModel, getSortedRowModel, useReactTable, type ColumnDef, type SortingState } from '@tanstack/react-table'

/** What a column's `meta` may say: right-aligned figures, and whether to leave it out at phone width. */
export interface ColumnLook {
  readonly numeric?: boolean
  readonly wideOnly?: boolean
}

function classOf(meta: unknown): string | undefined {
  const look = meta as ColumnLook | undefined
  return [look?.numeric === true ? 'num' : '', look?.wideOnly === true ? 'wide-only' : ''].join(' ').trim() || undefined
}

export interface DataTableProps<T> {
  readonly data: readonly T[]
  // biome-ignore lint/suspicious/noExplicitAny: columns of one table hold values of different types (TanStack's own idiom)
  readonly columns: ColumnDef<T, any>[]
  readonly caption: string
  readonly initialSort?: SortingState
  readonly empty?: string
  readonly onRowClick?: (row: T) => void
  readonly rowLabel?: (row: T) => string
  readonly selectedRow?: (row: T) => boolean
  readonly testId?: string
}

export function DataTable<T>({
  data,
  columns,
  caption,
  initialSort = [],
  empty = 'Nothing to show.',
  onRowClick,
  rowLabel,
  selectedRow,
  testId,
}: DataTableProps<T>) {
  const [sorting, setSorting] = useState<SortingState>(initialSort)
  const table = useReactTable({
    data: data as T[],
    columns,
    state: { sorting },
    onSortingChange: setSorting,
    getCoreRowModel: getCoreRowModel(),
    getSortedRowModel: getSortedRowModel(),
  })
  return (
    <div className="table-frame" data-testid={testId}>
      <table>
        <caption className="visually-hidden">{caption}</caption>
        <thead>
          {table.getHeaderGroups().map((group) => (
            <tr key={group.id}>
              {group.headers.map((header) => {
                const sorted = header.column.getIsSorted()
                return (
                  <th
                    key={header.id}
                    scope="col"
                    className={classOf(header.column.columnDef.meta)}
                    aria-sort={sorted === 'asc' ? 'ascending' : sorted === 'desc' ? 'descending' : 'none'}
                  >
                    {header.isPlaceholder ? null : header.column.getCanSort() ? (
                      <button type="button" className="sort" onClick={header.column.getToggleSortingHandler()}>
                        {flexRender(header.column.columnDef.header, header.getContext())}
                        <span aria-hidden="true" className="sort-mark">
                          {sorted === 'asc' ? '▲' : sorted === 'desc' ? '▼' : '↕'}
                        </span>
                      </button>
                    ) : (
                      flexRender(header.column.columnDef.header, header.getContext())
                    )}
                  </th>
                )
              })}
            </tr>
          ))}
        </thead>
        <tbody>
          {table.getRowModel().rows.length === 0 ? (
            <tr>
              <td colSpan={columns.length} className="empty">
                {empty}
              </td>
            </tr>
          ) : (
            table.getRowModel().rows.map((row) => {
              const clickable = onRowClick !== undefined
              return (
                <tr
                  key={row.id}
                  className={[clickable ? 'clickable' : '', selectedRow?.(row.original) ? 'selected' : ''].join(' ').trim() || undefined}
                  {...(clickable
                    ? {
                        tabIndex: 0,
                        role: 'button',
                        'aria-label': rowLabel?.(row.original),
                        onClick: () => onRowClick(row.original),
                        onKeyDown: (event: React.KeyboardEvent) => {
                          if (event.key === 'Enter' || event.key === ' ') {
                            event.preventDefault()
                            onRowClick(row.original)
                          }
                        },
                      }
                    : {})}
                >
                  {row.getVisibleCells().map((cell) => (
                    <td key={cell.id} className={classOf(cell.column.columnDef.meta)}>
                      {flexRender(cell.column.columnDef.cell, cell.getContext())}
                    </td>
                  ))}
                </tr>
              )
            })
          )}
        </tbody>
      </table>
    </div>
  )
}
