"""Serving the agent: the HTTP server (OpenAI, Cohere/Jina shapes), MCP, the LangChain tool."""
