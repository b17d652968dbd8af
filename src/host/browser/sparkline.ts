/** A small filled line chart on a canvas, scaled to the series' own maximum. */

/** Draws `values` (oldest first) across the canvas, newest at the right edge. */
export function drawSparkline(canvas: HTMLCanvasElement, values: number[], capacity = 240): void {
  const dpr = globalThis.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(canvas.clientWidth * dpr));
  const h = Math.max(1, Math.round(canvas.clientHeight * dpr));
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
  const g = canvas.getContext('2d');
  if (!g) return;
  g.clearRect(0, 0, w, h);
  if (values.length < 2) return;
  const max = Math.max(...values);
  if (max <= 0) return;
  const step = w / (capacity - 1);
  const x0 = w - (values.length - 1) * step;
  const y = (v: number) => h - 1 - (v / max) * (h - 3);
  const style = getComputedStyle(canvas);
  g.beginPath();
  g.moveTo(x0, h);
  values.forEach((v, i) => g.lineTo(x0 + i * step, y(v)));
  g.lineTo(w, h);
  g.closePath();
  g.fillStyle = style.getPropertyValue('--chart-fill') || 'rgba(90,160,230,0.25)';
  g.fill();
  g.beginPath();
  values.forEach((v, i) => (i === 0 ? g.moveTo(x0, y(v)) : g.lineTo(x0 + i * step, y(v))));
  g.strokeStyle = style.getPropertyValue('--chart-line') || '#5aa0e6';
  g.lineWidth = dpr;
  g.stroke();
}
