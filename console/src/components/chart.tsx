/**
 * ECharts in React: one instance per element, options replaced on change, resized with its box,
 * re-themed when the system switches between light and dark, drawn without animation when the
 * system asks for reduced motion. Only the chart types the console uses are registered, which
 * keeps the bundle smaller.
 */
import { useEffect, useRef, useState } from 'react'
import * as echarts from 'echarts/core'
import { BarChart, GaugeChart, LineChart } from 'echarts/charts'
import { GridComponent, LegendComponent, MarkAreaComponent, TooltipComponent, AriaComponent } from 'echarts/components'
import { SVGRenderer } from 'echarts/renderers'
import type { EChartsCoreOption } from 'echarts/core'
import { useColorScheme, usePrefersReducedMotion } from '../theme'

echarts.use([BarChart, LineChart, GaugeChart, GridComponent, LegendComponent, MarkAreaComponent, TooltipComponent, AriaComponent, SVGRenderer])

export interface ChartProps {
  /** The options, or a function of the chart's width in pixels for options that depend on it (made again on resize). */
  readonly option: EChartsCoreOption | ((widthPx: number) => EChartsCoreOption)
  /** What the chart shows, for screen readers (the data is also in a table beside it). */
  readonly label: string
  readonly height: number
  readonly testId?: string
}

export function Chart({ option, label, height, testId }: ChartProps) {
  const element = useRef<HTMLDivElement>(null)
  const chart = useRef<echarts.ECharts | null>(null)
  const scheme = useColorScheme()
  const still = usePrefersReducedMotion()
  const [widthPx, setWidthPx] = useState<number>()

  useEffect(() => {
    if (!element.current) return
    const instance = echarts.init(element.current, scheme === 'dark' ? 'dark' : undefined, { renderer: 'svg' })
    chart.current = instance
    setWidthPx(element.current.clientWidth)
    const observer = new ResizeObserver(([entry]) => {
      instance.resize()
      if (entry) setWidthPx(Math.round(entry.contentRect.width))
    })
    observer.observe(element.current)
    return () => {
      observer.disconnect()
      instance.dispose()
      chart.current = null
    }
  }, [scheme])

  // Options made from the width are set again only when the function gives other options for it.
  const options = typeof option === 'function' ? (widthPx === undefined ? undefined : option(widthPx)) : option
  // The chart is created again when the scheme changes (above): its options must be set again too.
  // biome-ignore lint/correctness/useExhaustiveDependencies: scheme re-runs this after the chart is re-created
  useEffect(() => {
    if (options !== undefined)
      chart.current?.setOption({ backgroundColor: 'transparent', aria: { enabled: true }, ...options, ...(still && { animation: false }) }, { notMerge: true })
  }, [options, scheme, still])

  return <div ref={element} role="img" aria-label={label} style={{ height, width: '100%' }} data-testid={testId} />
}
