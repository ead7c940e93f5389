"""How the real-model suite compiles llama.cpp (tests/real_model/server.py): the build the CI step runs."""

from __future__ import annotations

from tests.real_model.server import PORTABLE_X86_CMAKE_ARGS, build_env


def test_llama_cpp_is_built_portably_on_x86_64_unless_the_caller_chose() -> None:
    """A native build (-march=native) died of SIGILL on its first completion on a VM advertising AVX-512 and
    AMX; x86_64 builds for AVX2 instead, other machines keep llama.cpp's default, a set CMAKE_ARGS wins."""
    x86 = build_env({}, "x86_64")
    assert x86["CMAKE_ARGS"] == PORTABLE_X86_CMAKE_ARGS and "-DGGML_NATIVE=OFF" in PORTABLE_X86_CMAKE_ARGS
    assert int(x86["CMAKE_BUILD_PARALLEL_LEVEL"]) >= 1
    assert build_env({"CMAKE_ARGS": "-DGGML_CUDA=ON"}, "x86_64")["CMAKE_ARGS"] == "-DGGML_CUDA=ON"
    assert "CMAKE_ARGS" not in build_env({}, "aarch64")
