"""`dscache completion bash|zsh|fish`: print a shell completion script built from the parser."""

from __future__ import annotations

import argparse
import sys

from dscache.cli.exits import EXIT_OK

EXAMPLES = """\
  source <(dscache completion bash)                       # in ~/.bashrc
  source <(dscache completion zsh)                        # in ~/.zshrc, after compinit
  dscache completion fish > ~/.config/fish/completions/dscache.fish"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("shell", choices=["bash", "zsh", "fish"], metavar="SHELL", help="bash, zsh or fish")


def run(args: argparse.Namespace) -> int:
    from dscache.cli.app import build_parser
    from dscache.cli.completions import script

    sys.stdout.write(script(args.shell, build_parser()))
    return EXIT_OK
