"""``ptl info``: versions, what was built, the GPUs and whether the compiled ops loaded (for bug reports)."""


def run_info(args):
    """Print :func:`ptl_ext.info.collect_info` as text; returns the dict."""
    from ..info import collect_info, format_info

    info = collect_info()
    print(format_info(info))
    return info
