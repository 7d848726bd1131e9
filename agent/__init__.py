"""The agent: the LangGraph graph and its nodes, `RAGAgent`, and what serves it (the HTTP
server, MCP, the LangChain tool). The public names are importable from `rearag` itself."""
