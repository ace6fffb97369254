"""The agent loop and its coordinators."""
