"""Built-in exporters, one module each (``from victor.analytics import ...`` finds them):
PostgreSQL and OpenTelemetry need optional packages (``victor-orchestrator[postgres]``,
``[otel]``), imported only when their module is."""
