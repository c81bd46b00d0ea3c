"""The sidecar suite (seed 002): its Users, config, options, prompts and the server-side series it scrapes."""
