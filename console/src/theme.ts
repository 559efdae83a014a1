/** Light or dark, following the system (prefers-color-scheme); the CSS does the same with variables. */
import { useSyncExternalStore } from 'react'

/** Whether a media query matches, kept current as the system setting changes. */
function useMediaQuery(text: string): boolean {
  return useSyncExternalStore(
    (onChange) => {
      const media = window.matchMedia(text)
      media.addEventListener('change', onChange)
      return () => media.removeEventListener('change', onChange)
    },
    () => window.matchMedia(text).matches,
  )
}

export function useColorScheme(): 'light' | 'dark' {
  return useMediaQuery('(prefers-color-scheme: dark)') ? 'dark' : 'light'
}

/** The system asks for less motion (prefers-reduced-motion): charts then draw without animating. */
export function usePrefersReducedMotion(): boolean {
  return useMediaQuery('(prefers-reduced-motion: reduce)')
}

/** Series colours that read on both backgrounds. */
export const SERIES_COLORS = ['#0f766e', '#2563eb', '#d97706', '#9333ea', '#dc2626', '#0891b2', '#65a30d', '#db2777', '#4b5563', '#7c3aed']
export const OTHER_COLOR = '#94a3b8'
