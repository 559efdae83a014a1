/**
 * ECharts in React: one instance per element, options replaced on change, resized with its box,
 * re-themed when the system switches between light and dark. Only the chart types the console
 * uses are registered, which keeps the bundle smaller.
 */
import { useEffect, useRef } from 'react'
import * as echarts from 'echarts/core'
import { BarChart, GaugeChart, LineChart } from 'echarts/charts'
import { GridComponent, LegendComponent, MarkAreaComponent, TooltipComponent, AriaComponent } from 'echarts/components'
import { SVGRenderer } from 'echarts/renderers'
import type { EChartsCoreOption } from 'echarts/core'
import { useColorScheme } from '../theme'

echarts.use([BarChart, LineChart, GaugeChart, GridComponent, LegendComponent, MarkAreaComponent, TooltipComponent, AriaComponent, SVGRenderer])

export interface ChartProps {
  readonly option: EChartsCoreOption
  /** What the chart shows, for screen readers (the data is also in a table beside it). */
  readonly label: string
  readonly height: number
  readonly testId?: string
}

export function Chart({ option, label, height, testId }: ChartProps) {
  const element = useRef<HTMLDivElement>(null)
  const chart = useRef<echarts.ECharts | null>(null)
  const scheme = useColorScheme()

  useEffect(() => {
    if (!element.current) return
    const instance = echarts.init(element.current, scheme === 'dark' ? 'dark' : undefined, { renderer: 'svg' })
    chart.current = instance
    const observer = new ResizeObserver(() => instance.resize())
    observer.observe(element.current)
    return () => {
      observer.disconnect()
      instance.dispose()
      chart.current = null
    }
  }, [scheme])

  // The chart is created again when the scheme changes (above): its options must be set again too.
  // biome-ignore lint/correctness/useExhaustiveDependencies: scheme re-runs this after the chart is re-created
  useEffect(() => {
    chart.current?.setOption({ backgroundColor: 'transparent', aria: { enabled: true }, ...option }, { notMerge: true })
  }, [option, scheme])

  return <div ref={element} role="img" aria-label={label} style={{ height, width: '100%' }} data-testid={testId} />
}
