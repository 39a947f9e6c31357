"""What the HTTP interfaces (`api/` and `web/`) share: the app's services, one transaction
per request, signed file URLs and how a request's validation problems are told."""
