"""The Jinja2 templates of the credit report (`report.html.j2`), shipped in the package and
read by `sector_credit.clients.report`."""
