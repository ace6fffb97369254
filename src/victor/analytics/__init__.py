"""Analytics: events, costs, exporters and reports."""

from victor.analytics.pricing import ModelPrice, PriceTable, default_price_table

__all__ = ["ModelPrice", "PriceTable", "default_price_table"]
