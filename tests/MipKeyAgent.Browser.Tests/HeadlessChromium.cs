using OpenQA.Selenium;
using OpenQA.Selenium.Chrome;
using OpenQA.Selenium.Support.UI;

namespace MipKeyAgent.Browser.Tests;

/// <summary>
/// One headless Debian chromium for the test collection, driven by Debian's chromedriver (both from
/// scripts/prereqs.sh). Selenium is given both paths, so it never looks for or downloads a browser.
/// </summary>
public sealed class HeadlessChromium : IDisposable
{
    public const string BrowserPath = "/usr/bin/chromium";
    public const string DriverPath = "/usr/bin/chromedriver";

    public HeadlessChromium()
    {
        Assert.True(File.Exists(BrowserPath), $"{BrowserPath} is missing: scripts/prereqs.sh installs Debian's chromium");
        Assert.True(File.Exists(DriverPath), $"{DriverPath} is missing: scripts/prereqs.sh installs Debian's chromium-driver");
        Environment.SetEnvironmentVariable("SE_OFFLINE", "true");
        Environment.SetEnvironmentVariable("SE_AVOID_STATS", "true");
        var service = ChromeDriverService.CreateDefaultService(Path.GetDirectoryName(DriverPath)!, Path.GetFileName(DriverPath));
        service.HideCommandPromptWindow = true;
        service.SuppressInitialDiagnosticInformation = true;
        var options = new ChromeOptions { BinaryLocation = BrowserPath };
        options.AddArguments("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,900",
            "--no-first-run", "--disable-extensions", "--disable-background-networking");
        Driver = new ChromeDriver(service, options, TimeSpan.FromSeconds(60));
        Driver.Manage().Timeouts().PageLoad = TimeSpan.FromSeconds(60);
        Driver.Manage().Timeouts().AsynchronousJavaScript = TimeSpan.FromSeconds(30);
    }

    public ChromeDriver Driver { get; }

    /// <summary>Where screenshots go: artifacts/ under the test's output directory.</summary>
    public static string Artifacts { get; } = Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, "artifacts")).FullName;

    public void Resize(int width, int height) => Driver.Manage().Window.Size = new System.Drawing.Size(width, height);

    public object? Script(string script, params object[] args) => Driver.ExecuteScript(script, args);

    public void WaitUntil(Func<bool> condition, string what, TimeSpan? limit = null)
    {
        var wait = new WebDriverWait(Driver, limit ?? TimeSpan.FromSeconds(20)) { PollingInterval = TimeSpan.FromMilliseconds(100) };
        wait.Message = "timed out waiting for " + what;
        wait.Until(_ => condition());
    }

    public string Screenshot(string name)
    {
        var path = Path.Combine(Artifacts, name + ".png");
        Driver.GetScreenshot().SaveAsFile(path);
        return path;
    }

    public void Dispose()
    {
        Driver.Quit();
        Driver.Dispose();
    }
}

[CollectionDefinition(Name)]
public sealed class BrowserCollection : ICollectionFixture<HeadlessChromium>
{
    public const string Name = "headless chromium";
}
