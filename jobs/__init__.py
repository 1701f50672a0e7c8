"""Scheduled jobs: one function per job (:mod:`jobs.tasks`) and the scheduler that runs them
(:mod:`jobs.scheduler`). Jobs hold no business logic: they call the service functions of
:mod:`sentra_graph` and record each execution in the store's job history.
"""
