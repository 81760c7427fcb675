"""The `mnm` subcommands of mnm_core, one module each.

A command module defines `register(subparsers)`, which adds its parser and sets `run`, a function
taking the parsed arguments and returning an exit code; `run` calls the mnm_core API and prints, and
imports heavy dependencies inside, so `mnm --help` stays fast. The CLI builds these in; every other
layer lists its own commands and registers them under the `mnm.commands` entry-point group (setup.py),
where the CLI discovers them.
"""

from mnm_core.commands import bag_eval, bench, eval, export, make_bag, metrics, model_report, text_bench

COMMANDS = (model_report, metrics, eval, make_bag, bag_eval, export, bench, text_bench)
"""mnm_core's command modules, in the order `mnm --help` lists them."""
