"""Built-in exporters, one module each (``from victor.analytics import ...`` finds them)."""
