"""The job queue: procrastinate on the app's Postgres. `queue` defers (torch-free); `tasks` run on workers."""
