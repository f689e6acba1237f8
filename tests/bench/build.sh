# Sourced by the run_*.sh benchmark scripts: bench_build NAME TARGET...
# configures $RINGKV_BUILD (default build/release) as Release when it does
# not exist yet, warns when an existing tree is not optimised (it is shared
# with the tests, so its build type is left alone), and builds the targets.
# Sets $build.
bench_build() {
    local name=$1
    shift
    build=${RINGKV_BUILD:-$root/build/release}
    if [[ ! -f $build/CMakeCache.txt ]]; then
        cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    fi
    local type
    type=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$build/CMakeCache.txt")
    case $type in
    Release | RelWithDebInfo) ;;
    *) echo "$name: warning: $build is a '${type:-no type}' build, not optimised" >&2 ;;
    esac
    local t
    for t in "$@"; do
        cmake --build "$build" -j2 --target "$t" >/dev/null
    done
}
