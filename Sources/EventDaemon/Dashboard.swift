/// The dashboard page served at `/` (static HTML, CSS and JavaScript; no build step, no network fetches).
public enum Dashboard {
    public static let html = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>Sutra Grid Events</title>
        <meta name="viewport" content="width=device-width, initial-scale=1"></head>
        <body><h1>Sutra Grid Events</h1>
        <p>The API: <a href="/api/stats">/api/stats</a>, <a href="/api/grid/agents">/api/grid/agents</a>,
        <a href="/api/grid/events/recent">/api/grid/events/recent</a>.</p></body></html>
        """
}
