"""The local runtime: llama.cpp in a worker process, memory estimates, chat templates."""
