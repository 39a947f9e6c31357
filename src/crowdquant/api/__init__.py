"""Interfaces: the HTTP API (GraphQL speaking numerapi's protocol, REST, file endpoints)."""
