"""A small MCP server (stdio) for examples/mcp_tools.py."""

from mcp.server.mcpserver import MCPServer

server = MCPServer("weather", log_level="WARNING")


@server.tool()
def get_forecast(city: str) -> str:
    """Weather forecast for a city."""
    return f"Rain in {city} tomorrow, 9 C"


if __name__ == "__main__":
    server.run("stdio")
