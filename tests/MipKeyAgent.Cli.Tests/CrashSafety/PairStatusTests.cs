using MipKeyAgent.Cli.Commands;
using MipKeyAgent.Hosting;
using MipKeyAgent.Store;
using MipKeyAgent.Store.Postgres;
using MipKeyAgent.TestSupport;
using Microsoft.Extensions.Logging.Abstractions;

namespace MipKeyAgent.Cli.Tests.CrashSafety;

/// <summary>
/// The status endpoint of an HA of a pair answers through every phase of its start (on a real PostgreSQL): starting, standby,
/// taking over (the lease held, the host not built yet), active; never an error while the lease is being taken over.
/// </summary>
public sealed class PairStatusTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("mipkey-pair-status-").FullName;

    [Fact]
    public async Task Status_LeaseTakenHostNotRunningYet_AnswersTakingOverNotAnError()
    {
        using var cluster = new PostgresCluster();
        string url = cluster.Url(cluster.CreateDatabase());
        string masterKey = Path.Combine(_directory, "pair.key");
        MasterKey.Create(masterKey);
        string socket = Path.Combine(_directory, "status.sock");
        using var keeper = new LeaseKeeper("ha-b", TimeSpan.FromSeconds(10), TimeProvider.System, NullLogger.Instance);
        await using var server = await StatusServer.StartAsync(() => HaCommand.Status(null, keeper, "(standby)", null), socket, null,
            NullLoggerFactory.Instance);

        var starting = await StatusClient.GetAsync(socket, null);
        keeper.Waiting(new LeaseState("ha-a", 1, TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(5)));
        var standby = await StatusClient.GetAsync(socket, null);
        using var opened = HomeAgentStores.OpenPostgres(PostgresUrl.Parse(url), masterKey, standby: false, keeper, CancellationToken.None);
        var takingOver = await StatusClient.GetAsync(socket, null);
        keeper.Serving();
        var active = keeper.Status;

        Assert.Equal("starting", starting.Cluster!.Role);
        Assert.Equal("standby", standby.Cluster!.Role);
        Assert.Equal("ha-a", standby.Cluster.LeaseHolder);
        Assert.Equal("taking over", takingOver.Cluster!.Role);
        Assert.Equal("ha-b", takingOver.Cluster.LeaseHolder);
        Assert.Equal(1, takingOver.Cluster.LeaseToken);
        Assert.True(takingOver.Cluster.DatabaseHealthy);
        Assert.Empty(takingOver.Bindings);
        Assert.Equal("active", active.Role);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
