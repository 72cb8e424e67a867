"""aiohttp web app: API, wallboard, agent console. Roadmap: after the dialer."""
