// oneTBB flow-graph baseline for perf/bench_sched.c (the one C++ file of
// the project, built only when Debian's libtbb-dev is installed).
//
// Builds one continue_node per task with an edge per dependency, then
// times re-runs: try_put to every root, wait_for_all. The median ns per
// task over `iters` runs is returned, inside a task_arena of `threads`.
#include <algorithm>
#include <chrono>
#include <memory>
#include <vector>

#include <oneapi/tbb/flow_graph.h>
#include <oneapi/tbb/task_arena.h>

namespace {

long long now_ns()
{
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

void busy(long long work_ns)
{
    if (work_ns <= 0)
        return;
    long long end = now_ns() + work_ns;
    while (now_ns() < end) {
    }
}

} // namespace

extern "C" double ct_bench_tbb_ns_per_task(const int *coff, const int *chi,
                                           const int *n_par, int n,
                                           int threads, int warmup, int iters,
                                           long long work_ns)
{
    using namespace oneapi::tbb;
    using node_t = flow::continue_node<flow::continue_msg>;
    task_arena arena(threads);
    std::vector<double> v;

    arena.execute([&] {
        flow::graph g;
        std::vector<std::unique_ptr<node_t>> nodes;
        nodes.reserve(static_cast<size_t>(n));
        for (int i = 0; i < n; i++)
            nodes.emplace_back(new node_t(
                g, [work_ns](const flow::continue_msg &) { busy(work_ns); }));
        for (int i = 0; i < n; i++)
            for (int k = coff[i]; k < coff[i + 1]; k++)
                flow::make_edge(*nodes[i], *nodes[chi[k]]);
        for (int it = 0; it < warmup + iters; it++) {
            long long t0 = now_ns();
            for (int i = 0; i < n; i++)
                if (n_par[i] == 0)
                    nodes[i]->try_put(flow::continue_msg());
            g.wait_for_all();
            if (it >= warmup)
                v.push_back(static_cast<double>(now_ns() - t0) / n);
        }
    });
    std::sort(v.begin(), v.end());
    size_t m = v.size();
    return m % 2 ? v[m / 2] : 0.5 * (v[m / 2 - 1] + v[m / 2]);
}
