using NormSharp.Serialization;
using ScottPlot;

namespace NormSharp.Plotting;

/// <summary>One named line of a chart.</summary>
/// <param name="Name">The legend text.</param>
/// <param name="X">The x values.</param>
/// <param name="Y">The y values (same length as <paramref name="X"/>); non-finite values are left out.</param>
public sealed record Series(string Name, IReadOnlyList<double> X, IReadOnlyList<double> Y);

/// <summary>Line charts saved as PNG, atomically (a crash never leaves a half-written image).</summary>
public static partial class Figure
{
    /// <summary>Saves a line chart of <paramref name="series"/> to <paramref name="path"/>.</summary>
    /// <param name="path">The PNG file.</param>
    /// <param name="title">The chart title.</param>
    /// <param name="xLabel">The x-axis label.</param>
    /// <param name="yLabel">The y-axis label.</param>
    /// <param name="series">The lines.</param>
    /// <param name="logY">Plot log10 of y, labelled with the original values.</param>
    /// <param name="width">Width in pixels.</param>
    /// <param name="height">Height in pixels.</param>
    /// <param name="integerX">Whether the x axis counts whole units (epochs), so ticks fall on integers.</param>
    /// <param name="legendBelow">Put the legend in the lower right corner (for rising curves such as accuracy).</param>
    public static void SaveLines(string path, string title, string xLabel, string yLabel, IEnumerable<Series> series, bool logY = false,
        bool integerX = false, bool legendBelow = false, int width = 800, int height = 500)
    {
        Plot plot = Lines(title, xLabel, yLabel, series, logY);
        if (integerX) plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
        if (legendBelow) plot.ShowLegend(Alignment.LowerRight);
        AtomicFile.WriteAllBytes(path, plot.GetImageBytes(width, height, ImageFormat.Png));
    }

    /// <summary>Saves a grid of panels side by side (e.g. loss and accuracy) to one PNG.</summary>
    public static void SavePanels(string path, IReadOnlyList<(string Title, string XLabel, string YLabel, IReadOnlyList<Series> Series, bool LogY)> panels, int panelWidth = 640, int height = 460)
    {
        var multi = new Multiplot();
        multi.RemovePlot(multi.GetPlot(0));
        foreach (var p in panels) multi.AddPlot(Lines(p.Title, p.XLabel, p.YLabel, p.Series, p.LogY));
        multi.Layout = new ScottPlot.MultiplotLayouts.Columns();
        AtomicFile.WriteAllBytes(path, multi.Render(panelWidth * panels.Count, height).GetImageBytes(ImageFormat.Png));
    }

    private static Plot Lines(string title, string xLabel, string yLabel, IEnumerable<Series> series, bool logY)
    {
        var plot = new Plot();
        foreach (Series s in series)
        {
            var xs = new List<double>();
            var ys = new List<double>();
            for (int i = 0; i < Math.Min(s.X.Count, s.Y.Count); i++)
            {
                double y = logY ? Math.Log10(s.Y[i]) : s.Y[i];
                if (double.IsFinite(s.X[i]) && double.IsFinite(y)) { xs.Add(s.X[i]); ys.Add(y); }
            }
            var scatter = plot.Add.Scatter(xs.ToArray(), ys.ToArray());
            scatter.LegendText = s.Name;
            scatter.MarkerSize = xs.Count > 60 ? 0 : 5;
            scatter.LineWidth = 2;
        }
        if (logY)
        {
            plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic
            {
                LabelFormatter = v => Math.Pow(10, v).ToString("G3", System.Globalization.CultureInfo.InvariantCulture),
            };
        }
        plot.Title(title);
        plot.XLabel(xLabel);
        plot.YLabel(yLabel + (logY ? " (log scale)" : ""));
        plot.ShowLegend(Alignment.UpperRight);
        return plot;
    }
}
