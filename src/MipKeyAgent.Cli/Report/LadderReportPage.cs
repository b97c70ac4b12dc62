using System.Reflection;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace MipKeyAgent.Cli.Report;

/// <summary>
/// Writes a <see cref="LadderReport"/> as one self-contained HTML file: the page, its style and its
/// renderer (embedded resource <c>ladder-report.html</c>) with the model as JSON inside. Nothing in
/// it is fetched from anywhere.
/// </summary>
internal static class LadderReportPage
{
    private const string DataMarker = "/*MIPKEY-REPORT-DATA*/";
    private const string TitleMarker = "<!--MIPKEY-REPORT-TITLE-->";

    public static void Write(LadderReport report, string path)
    {
        ArgumentNullException.ThrowIfNull(report);
        using var stream = File.Create(path);
        using var writer = new StreamWriter(stream, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
        writer.Write(Render(report));
    }

    public static string Render(LadderReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var template = Template();
        int data = template.IndexOf(DataMarker, StringComparison.Ordinal);
        int title = template.IndexOf(TitleMarker, StringComparison.Ordinal);
        if (data < 0 || title < 0 || title > data)
        {
            throw new InvalidOperationException("ladder-report.html lacks its markers");
        }
        // The default encoder escapes <, > and & as \u003C ..., so the JSON cannot close its script element.
        var json = JsonSerializer.Serialize(report, LadderReportJson.Default.LadderReport);
        return new StringBuilder(template.Length + json.Length)
            .Append(template, 0, title).Append(System.Net.WebUtility.HtmlEncode(report.Title))
            .Append(template, title + TitleMarker.Length, data - title - TitleMarker.Length).Append(json)
            .Append(template, data + DataMarker.Length, template.Length - data - DataMarker.Length)
            .ToString();
    }

    private static string Template()
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("MipKeyAgent.Cli.Report.ladder-report.html")
            ?? throw new InvalidOperationException("the ladder-report.html resource is missing");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }
}

[JsonSerializable(typeof(LadderReport))]
[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
internal sealed partial class LadderReportJson : JsonSerializerContext;
