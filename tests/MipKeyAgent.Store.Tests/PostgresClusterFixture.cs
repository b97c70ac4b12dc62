namespace MipKeyAgent.Store.Tests;

/// <summary>One throwaway PostgreSQL cluster for the tests of the "postgres" collection (they run one after another; each uses its own database).</summary>
[CollectionDefinition(Name)]
public sealed class PostgresClusterFixture : ICollectionFixture<PostgresCluster>
{
    public const string Name = "postgres";
}
