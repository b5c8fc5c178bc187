"""The producer side: submit tasks and get their results or typed failures."""
