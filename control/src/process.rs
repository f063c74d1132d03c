//! What Herald's long-running processes (`herald-worker`, `herald-api`) set up for
//! themselves before they start.

/// Opt the process out of transparent huge pages. Both servers allocate with mimalloc, which
/// reserves its arenas in large aligned regions: backed by huge pages, a page activity's or a
/// request's few kilobytes of scratch cost 2 MiB each, and an inbox campaign's worker RSS
/// more than doubled, for no gain in speed (docs/performance.md). The crate is built without
/// its `madvise(MADV_HUGEPAGE)` (feature `no_thp`); this also covers a kernel whose THP
/// setting is `always`.
pub fn no_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and only sets a flag of this process.
    unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
}
