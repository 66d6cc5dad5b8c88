// ECharts, tree-shaken to the charts the page draws, rendered to canvas.
import * as echarts from 'echarts/core';
import { BarChart, HeatmapChart, LineChart } from 'echarts/charts';
import { DataZoomComponent, GridComponent, LegendComponent, TooltipComponent, VisualMapComponent } from 'echarts/components';
import { CanvasRenderer } from 'echarts/renderers';

echarts.use([BarChart, LineChart, HeatmapChart, GridComponent, LegendComponent, TooltipComponent, VisualMapComponent, DataZoomComponent, CanvasRenderer]);

export type Option = echarts.EChartsCoreOption;

/** Twelve distinguishable colours (one per attribution model). */
const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac', '#1f3b73', '#8cd17d'];

/** Draws `option` into `box` (a fresh chart each time, so no series of an earlier query remains). */
export function draw(box: HTMLElement, option: Option): void {
  echarts.getInstanceByDom(box)?.dispose();
  box.hidden = false;
  const chart = echarts.init(box, undefined, { renderer: 'canvas' });
  chart.setOption({ animation: false, color: PALETTE, ...option });
}

/** Removes the chart of `box` (an empty or failed query shows words instead). */
export function clear(box: HTMLElement): void {
  echarts.getInstanceByDom(box)?.dispose();
  box.hidden = true;
}

window.addEventListener('resize', () => {
  document.querySelectorAll<HTMLElement>('.chart').forEach((b) => echarts.getInstanceByDom(b)?.resize());
});
