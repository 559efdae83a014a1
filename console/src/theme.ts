/** Light or dark, following the system (prefers-color-scheme); the CSS does the same with variables. */
import { useSyncExternalStore } from 'react'

const query = () => window.matchMedia('(prefers-color-scheme: dark)')

export function useColorScheme(): 'light' | 'dark' {
  return useSyncExternalStore(
    (onChange) => {
      const media = query()
      media.addEventListener('change', onChange)
      return () => media.removeEventListener('change', onChange)
    },
    () => (query().matches ? 'dark' : 'light'),
  )
}

/** Series colours that read on both backgrounds. */
export const SERIES_COLORS = ['#0f766e', '#2563eb', '#d97706', '#9333ea', '#dc2626', '#0891b2', '#65a30d', '#db2777', '#4b5563', '#7c3aed']
export const OTHER_COLOR = '#94a3b8'
