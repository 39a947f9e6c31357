"""Running participants' uploaded models: the runtimes they run in and the sandbox."""
