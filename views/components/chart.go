package components

// Point is one bar of a chart: its value, the label a reader hears or sees
// on hover ("3 Dec: 12 runs"), and an optional tick written under it.
type Point struct {
	Value int64
	Label string
	Tick  string
}

// Chart is a bar chart of one series, laid out for drawing as SVG.
type Chart struct {
	ID, Title string
	Max       string // the top of the scale, as text
	Bars      []Bar
	Width     int
	Height    int // of the bars; ticks go below
}

// Bar is one laid-out bar.
type Bar struct {
	X, Y, W, H int
	Label      string
	Tick       string
}

// chartBarsHeight is the height of a chart's bars, in SVG units.
const chartBarsHeight = 120

// NewChart lays out points as bars of width per slot, slots in all (at
// least len(points): room for the rest of a period, empty); format writes
// the highest value.
func NewChart(id, title string, points []Point, slots, width int, format func(int64) string) Chart {
	slots = max(slots, len(points), 1)
	c := Chart{ID: id, Title: title, Width: slots * width, Height: chartBarsHeight}
	var top int64
	for _, p := range points {
		top = max(top, p.Value)
	}
	c.Max = format(top)
	for i, p := range points {
		h := 0
		if top > 0 {
			h = int(p.Value * chartBarsHeight / top)
		}
		if p.Value > 0 && h < 2 {
			h = 2 // a slot with something is never invisible
		}
		c.Bars = append(c.Bars, Bar{X: i*width + 1, Y: chartBarsHeight - h, W: width - 2, H: h, Label: p.Label, Tick: p.Tick})
	}
	return c
}
