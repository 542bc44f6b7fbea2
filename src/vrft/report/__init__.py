"""Reports: a self-contained HTML page of samples (`html.render_report`) and PNG plots (`plots`)."""
