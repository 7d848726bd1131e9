"""The agent: the LangGraph graph and its nodes, `RAGAgent`, threads. What serves it (the HTTP
server, MCP, the LangChain tool) is the `serving` subpackage. The public names are importable
from `rearag` itself."""
