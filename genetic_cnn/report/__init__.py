"""report: the Markdown report, plots, drawings, TensorBoard files and the dashboard.
Imports space/, search/, fitness/ (method), history/, config, errors and files; matplotlib only where it draws."""
