# llama-cpp-python loads llama.cpp with ctypes from llama_cpp/lib/, which PyInstaller's import
# analysis cannot see: collect those shared libraries to the same place in the bundle.
from PyInstaller.utils.hooks import collect_dynamic_libs

binaries = collect_dynamic_libs("llama_cpp")
