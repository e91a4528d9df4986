using NormSharp.Serialization;
using ScottPlot;

namespace NormSharp.Plotting;

public static partial class Figure
{
    /// <summary>Saves scatter plots side by side in one PNG, one panel per entry of <paramref name="panels"/>, each
    /// drawing its points as dots without connecting lines. With <paramref name="identityLine"/> every panel also gets
    /// a dashed y = x line across the range of its points, against which predictions can be read off targets.</summary>
    /// <param name="path">The PNG file.</param>
    /// <param name="panels">Per panel: title, axis labels and the points (the series name is the legend text).</param>
    /// <param name="identityLine">Whether to draw y = x in every panel.</param>
    /// <param name="panelWidth">Width of one panel in pixels.</param>
    /// <param name="height">Height in pixels.</param>
    public static void SaveScatterPanels(string path, IReadOnlyList<(string Title, string XLabel, string YLabel, Series Points)> panels,
        bool identityLine = false, int panelWidth = 480, int height = 460)
    {
        ArgumentNullException.ThrowIfNull(panels);
        if (panels.Count == 0) throw new ArgumentException("Figure.SaveScatterPanels: needs at least one panel.", nameof(panels));
        var multi = new Multiplot();
        multi.RemovePlot(multi.GetPlot(0));
        foreach (var (title, xLabel, yLabel, points) in panels)
        {
            var plot = new Plot();
            var xs = new List<double>();
            var ys = new List<double>();
            for (int i = 0; i < Math.Min(points.X.Count, points.Y.Count); i++)
                if (double.IsFinite(points.X[i]) && double.IsFinite(points.Y[i])) { xs.Add(points.X[i]); ys.Add(points.Y[i]); }
            if (identityLine && xs.Count > 0)
            {
                double low = Math.Min(xs.Min(), ys.Min()), high = Math.Max(xs.Max(), ys.Max());
                var line = plot.Add.Line(low, low, high, high);
                line.LinePattern = LinePattern.Dashed;
                line.LineColor = Colors.Gray;
                line.LegendText = "y = x";
            }
            var dots = plot.Add.ScatterPoints(xs.ToArray(), ys.ToArray());
            dots.MarkerSize = 4;
            dots.LegendText = points.Name;
            plot.Title(title);
            plot.XLabel(xLabel);
            plot.YLabel(yLabel);
            plot.ShowLegend(Alignment.UpperLeft);
            multi.AddPlot(plot);
        }
        multi.Layout = new ScottPlot.MultiplotLayouts.Columns();
        AtomicFile.WriteAllBytes(path, multi.Render(panelWidth * panels.Count, height).GetImageBytes(ImageFormat.Png));
    }
}
