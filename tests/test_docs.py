# Copyright (c) OpenMMLab. All rights reserved.
"""Documentation that cannot rot.

The commands in README.md, configs/dmformer/README.md and docs/**/*.md must
name scripts, configs and files that exist and pass only flags that their
tools accept; relative links must point at files that exist; the model index
(configs/dmformer/metafile.yml) must list exactly the configs under
configs/dmformer/. Each test lists every bad command it found.

Commands are the lines of fenced code blocks (joined over trailing
backslashes) and the inline code spans that start with ``python``,
``python3``, ``bash``, ``sh``, ``pip``, an environment assignment
(``PYTHON=...``), ``tools/`` or ``demo/``. A command is cut at ``|``,
``&&``, ``||`` and ``;``. Names that cannot be checked are skipped:
outputs and downloads (``data/``, ``work_dirs/``, ``checkpoints/``,
``outputs/``, absolute paths) and placeholders (``CONFIG``, ``CKPT``,
``<...>``, ``...``, ``*``, ``$X``, ``{a,b}``). The flags a Python tool
accepts are read from its source (the option strings of its
``add_argument`` calls), and for a few tools checked against their real
``--help``.
"""
import ast
import functools
import glob
import os.path as osp
import re
import shlex
import subprocess
import sys
from typing import Dict, Iterator, List, Optional, Set, Tuple

import pytest

from dmformer.testing import REPO_ROOT

README = 'README.md'
METAFILE = 'configs/dmformer/metafile.yml'
README_MAX_LINES = 220

#: top-level entries of the repository whose paths a command may name
CHECKED_ROOTS = ('tools', 'configs', 'demo', 'dmformer', 'tests', 'docs',
                 'requirements', '.ci', 'README.md', 'setup.py', 'setup.cfg',
                 'pytest.ini', 'requirements.txt')
#: paths that are outputs or downloads, never in the repository
OUTPUT_ROOTS = ('data/', 'work_dirs/', 'checkpoints/', 'outputs/', '/', '~')
#: shell scripts whose extra arguments go to a Python tool
FORWARDS = {
    'tools/dist_train.sh': 'tools/train.py',
    'tools/dist_test.sh': 'tools/test.py',
    'tools/slurm_train.sh': 'tools/train.py',
}
#: shell scripts whose extra arguments go to another program (not checked)
PASS_THROUGH = {'tools/run_tests.sh'}  # pytest's arguments
#: the tools whose source-read flags are compared with their real --help
HELP_CHECKED = ('tools/train.py', 'tools/test.py', 'demo/video_demo.py')
CONTROL = {'|', '||', '&&', ';', '&'}
REDIRECT = re.compile(r'^\d*[<>]')
ENV_ASSIGN = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*=')
FLAG = re.compile(r'^\[*(--?[A-Za-z][\w-]*)')
COMMAND_START = re.compile(r'^(?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*'
                           r'(?:python3?|bash|sh|pip|tools/|demo/)')


def doc_files() -> List[str]:
    """The documentation files, relative to the repository root."""
    files = [README, 'configs/dmformer/README.md']
    files += sorted(
        osp.relpath(p, REPO_ROOT) for p in glob.glob(
            osp.join(REPO_ROOT, 'docs', '**', '*.md'), recursive=True))
    return [f for f in files if osp.isfile(osp.join(REPO_ROOT, f))]


def read(rel: str) -> str:
    with open(osp.join(REPO_ROOT, rel), encoding='utf-8') as f:
        return f.read()


def split_fences(text: str) -> Tuple[List[Tuple[int, List[str]]], str]:
    """The fenced code blocks (first line number, lines) and the prose
    with the blocks blanked out (line numbers kept)."""
    blocks, prose, block, start = [], [], None, 0
    for no, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith('```'):
            if block is None:
                block, start = [], no + 1
            else:
                blocks.append((start, block))
                block = None
            prose.append('')
        elif block is not None:
            block.append(line)
            prose.append('')
        else:
            prose.append(line)
    return blocks, '\n'.join(prose)


def block_commands(start: int, lines: List[str]) -> Iterator[Tuple[int, str]]:
    """The command lines of a code block, continuation lines joined."""
    buf, first = '', start
    for no, line in enumerate(lines, start):
        if not buf:
            first = no
        stripped = line.strip()
        if stripped.endswith('\\'):
            buf += stripped[:-1] + ' '
            continue
        buf += stripped
        if COMMAND_START.match(buf):
            yield first, buf
        buf = ''
    if buf and COMMAND_START.match(buf):
        yield first, buf


def inline_spans(prose: str) -> Iterator[Tuple[int, str]]:
    """The inline code spans of the prose (line number, text); a span may
    run over a line break."""
    for match in re.finditer(r'`([^`]+)`', prose):
        lineno = prose.count('\n', 0, match.start()) + 1
        yield lineno, ' '.join(match.group(1).split())


@functools.lru_cache(maxsize=None)
def doc_commands() -> List[Tuple[str, int, str, bool]]:
    """Every (file, line, text, is_command) to check. Inline spans that are
    not commands are kept for their paths only."""
    found = []
    for rel in doc_files():
        blocks, prose = split_fences(read(rel))
        for start, lines in blocks:
            for no, cmd in block_commands(start, lines):
                found.append((rel, no, cmd, True))
        for no, span in inline_spans(prose):
            found.append((rel, no, span, bool(COMMAND_START.match(span))))
    return found


def tokenize(cmd: str) -> List[List[str]]:
    """Shell words of a command, cut into simple commands at ``|``,
    ``&&``, ``||``, ``;``; comments and redirections dropped."""
    lexer = shlex.shlex(cmd, posix=True, punctuation_chars='|&;<>')
    lexer.whitespace_split = True
    lexer.commenters = '#'
    words, parts, skip_next = list(lexer), [[]], False
    for word in words:
        if skip_next:
            skip_next = False
        elif word in CONTROL:
            parts.append([])
        elif REDIRECT.match(word) or word in ('<', '>', '>>', '2>', '&>'):
            skip_next = word in ('<', '>', '>>', '2>', '&>')
        else:
            parts[-1].append(word)
    return [p for p in parts if p]


def is_placeholder(word: str) -> bool:
    """True for names that stand for a value the reader supplies."""
    if any(s in word for s in ('<', '>', '...', '*', '$', '{', '}', '|')):
        return True
    stem = osp.splitext(word.strip('[]'))[0]
    # CONFIG, CKPT, WORK_DIR, VIDEO.mp4, GLIP_CKPT, OFFICIAL_REPO, ...
    return bool(re.fullmatch(r'[A-Z][A-Z0-9_]*', stem))


def repo_path(word: str) -> Optional[str]:
    """The repository path a word names, or None if it names none that can
    be checked (an output, a download, a placeholder or no path)."""
    word = word.strip('[]()",\'').rstrip('.:')
    if '=' in word:  # --flag=path, key=path
        word = word.split('=', 1)[1]
    if not word or word.startswith(OUTPUT_ROOTS) or word.startswith('-'):
        return None
    if any(is_placeholder(part) for part in word.split('/')):
        return None
    if word.split('/')[0] not in CHECKED_ROOTS:
        return None
    if '/' not in word and '.' not in word:
        return None
    return word.rstrip('/')


def script_of(words: List[str]) -> Tuple[Optional[str], List[str]]:
    """The repository script a simple command runs and its arguments."""
    while words and ENV_ASSIGN.match(words[0]):
        words = words[1:]
    if not words:
        return None, []
    head = words[0]
    if head in ('python', 'python3') or head.endswith('/python'):
        if len(words) > 1 and words[1] in ('-c', '-m'):
            return None, words[2:] if words[1] == '-m' else []
        args = words[1:]
        while args and args[0].startswith('-'):  # interpreter options
            args = args[1:]
        return (args[0], args[1:]) if args else (None, [])
    if head in ('bash', 'sh'):
        return (words[1], words[2:]) if len(words) > 1 else (None, [])
    if head.startswith(('tools/', 'demo/')):
        return head, words[1:]
    return None, []


@functools.lru_cache(maxsize=None)
def python_flags(script: str) -> Set[str]:
    """The option strings a Python tool's argparse parsers accept, read
    from the ``add_argument`` calls of its source."""
    tree = ast.parse(read(script))
    flags = {'-h', '--help'}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(
                node.func, ast.Attribute) and node.func.attr == 'add_argument':
            for arg in node.args:
                if isinstance(arg, ast.Constant) and isinstance(
                        arg.value, str) and arg.value.startswith('-'):
                    flags.add(arg.value)
    return flags


@functools.lru_cache(maxsize=None)
def shell_flags(script: str) -> Set[str]:
    """The flags a shell script handles itself (its ``--x)`` case
    labels)."""
    labels = re.findall(r'^\s*(--[\w-]+(?:\s*\|\s*--[\w-]+)*)\)', read(script),
                        re.M)
    return {
        flag
        for label in labels
        for flag in re.findall(r'--[\w-]+', label)
    }


def accepted_flags(script: str) -> Optional[Set[str]]:
    """The flags ``script`` accepts, or None if they are not checked."""
    if script in PASS_THROUGH:
        return None
    if script in FORWARDS:
        return python_flags(FORWARDS[script])
    if script.endswith('.py'):
        return python_flags(script)
    if script.endswith('.sh'):
        return shell_flags(script)
    return None


def flags_in(args: List[str]) -> List[str]:
    flags = []
    for word in args:
        match = FLAG.match(word)
        if match and not is_placeholder(match.group(1).lstrip('-')):
            flags.append(match.group(1).split('=')[0])
    return flags


def problems_of(cmd: str, is_command: bool) -> List[str]:
    """What is wrong with one command (empty if nothing)."""
    try:
        parts = tokenize(cmd)
    except ValueError as error:  # unbalanced quotes
        return [f'cannot be parsed ({error})']
    problems = []
    for words in parts:
        for word in words:
            word, _, test_name = word.partition('::')  # pytest node ids
            path = repo_path(word)
            if path and not osp.exists(osp.join(REPO_ROOT, path)):
                problems.append(f'no such file: {path}')
            elif path and test_name and not re.search(
                    rf'def {re.escape(test_name.split("::")[-1])}\(',
                    read(path)):
                problems.append(f'no test {test_name} in {path}')
        if not is_command:
            continue
        script, args = script_of(words)
        if script is None or repo_path(script) is None \
                or not osp.isfile(osp.join(REPO_ROOT, script)):
            continue
        accepted = accepted_flags(script)
        if accepted is None:
            continue
        shown = FORWARDS.get(script, script)
        for flag in flags_in(args):
            if flag not in accepted:
                problems.append(f'{shown} does not accept {flag}')
    return problems


def report(bad: List[str]) -> str:
    return f'{len(bad)} bad command(s) in the docs:\n' + '\n'.join(bad)


def test_docs_exist_and_have_commands():
    files = doc_files()
    for rel in ('README.md', 'configs/dmformer/README.md',
                'docs/en/get_started.md',
                'docs/en/user_guides/dataset_prepare.md',
                'docs/en/user_guides/train.md', 'docs/en/user_guides/test.md'):
        assert rel in files, f'{rel} is missing'
    commands = [c for c in doc_commands() if c[3]]
    # the extractor finds the commands (a broken extractor passes anything)
    assert len(commands) > 50, len(commands)
    texts = ' '.join(c[2] for c in commands)
    for expected in ('bash tools/quickstart.sh', 'bash tools/run_tests.sh',
                     'tools/train.py', 'tools/test.py', 'demo/video_demo.py'):
        assert expected in texts, expected


def test_commands_name_existing_files_and_flags():
    bad = []
    for rel, no, cmd, is_command in doc_commands():
        for problem in problems_of(cmd, is_command):
            bad.append(f'{rel}:{no}: {problem}\n    {cmd}')
    assert not bad, report(bad)


def test_the_checker_catches_rot():
    """The checks fail on a missing script, config or flag."""
    assert problems_of('python tools/train.py configs/dmformer/nope.py',
                       True) == ['no such file: configs/dmformer/nope.py']
    assert problems_of('python tools/nope.py CONFIG', True) == \
        ['no such file: tools/nope.py']
    assert problems_of(
        'python tools/test.py CONFIG CKPT --no-such-flag',
        True) == ['tools/test.py does not accept --no-such-flag']
    assert problems_of('bash tools/dist_train.sh CONFIG 8 --bogus', True) \
        == ['tools/train.py does not accept --bogus']
    assert problems_of('bash tools/install_deps.sh --bogus', True) == \
        ['tools/install_deps.sh does not accept --bogus']
    # placeholders, outputs and optional-flag synopses pass
    assert problems_of(
        'python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] '
        '--cfg-options load_from=work_dirs/x/epoch_6.pth', True) == []
    assert problems_of('bash tools/install_deps.sh --check-mmcv', True) == []
    assert problems_of('tests/test_docs.py::test_readme_is_short', False) \
        == []
    assert problems_of('tests/test_docs.py::test_nope', False) == \
        ['no test test_nope in tests/test_docs.py']
    assert problems_of('PYTHON=/venv/bin/python bash tools/quickstart.sh',
                       True) == []


@pytest.mark.parametrize('script', HELP_CHECKED)
def test_source_flags_match_help(script):
    """The flags read from a tool's source are those of its --help."""
    out = subprocess.run([sys.executable, script, '--help'],
                         cwd=REPO_ROOT,
                         capture_output=True,
                         text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    shown = set(re.findall(r'(?<![\w-])(--?[A-Za-z][\w-]*)', out.stdout))
    assert python_flags(script) <= shown, \
        sorted(python_flags(script) - shown)
    # every option of the help (not words of its text) is read from source
    options = set(re.findall(r'^\s{2}(--?[A-Za-z][\w-]*)', out.stdout, re.M))
    assert options <= python_flags(script), \
        sorted(options - python_flags(script))


def heading_anchors(rel: str) -> Set[str]:
    """The anchors GitHub gives the headings of a Markdown file."""
    _, prose = split_fences(read(rel))
    anchors = set()
    for title in re.findall(r'^#+\s+(.*?)\s*$', prose, re.M):
        slug = re.sub(r'[^\w\- ]', '', title.strip().lower())
        anchors.add(slug.replace(' ', '-'))
    return anchors


def test_relative_links_resolve():
    """Relative links point at files that exist, and at headings that exist
    when they name one."""
    bad = []
    for rel in doc_files():
        _, prose = split_fences(read(rel))
        for match in re.finditer(r'\]\(([^)\s]+)\)', prose):
            target, _, anchor = match.group(1).partition('#')
            if re.match(r'^[a-z]+:', target):
                continue
            path = osp.normpath(osp.join(osp.dirname(rel), target)) \
                if target else rel
            lineno = prose.count('\n', 0, match.start()) + 1
            if not osp.exists(osp.join(REPO_ROOT, path)):
                bad.append(f'{rel}:{lineno}: broken link {match.group(1)}')
            elif anchor and path.endswith('.md') \
                    and anchor not in heading_anchors(path):
                bad.append(f'{rel}:{lineno}: no heading #{anchor} in {path}')
    assert not bad, '\n'.join(bad)


def test_readme_is_short():
    lines = read(README).count('\n')
    assert lines <= README_MAX_LINES, (
        f'README.md has {lines} lines (at most {README_MAX_LINES}); move '
        'details into docs/en/')


def load_metafile() -> Dict:
    import yaml
    with open(osp.join(REPO_ROOT, METAFILE), encoding='utf-8') as f:
        return yaml.safe_load(f)


def test_metafile_lists_every_config():
    meta = load_metafile()
    collections = {c['Name'] for c in meta['Collections']}
    for collection in meta['Collections']:
        readme = collection.get('README')
        assert readme and osp.isfile(osp.join(REPO_ROOT, readme)), readme
    names = [m['Name'] for m in meta['Models']]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    assert not duplicates, f'model names used twice: {duplicates}'
    bad, listed = [], set()
    for model in meta['Models']:
        name, config = model['Name'], model.get('Config', '')
        listed.add(config)
        if model.get('In Collection') not in collections:
            bad.append(f'{name}: unknown collection '
                       f'{model.get("In Collection")!r}')
        if not osp.isfile(osp.join(REPO_ROOT, config)):
            bad.append(f'{name}: no such config {config!r}')
        elif osp.splitext(osp.basename(config))[0] != name:
            bad.append(f'{name}: the name is not the config\'s ({config})')
        weights = model.get('Weights')
        if weights and not re.match(r'^https?://', weights) \
                and not osp.isfile(osp.join(REPO_ROOT, weights)):
            bad.append(f'{name}: no such weights file {weights!r}')
        for result in model.get('Results') or []:
            for key in ('Task', 'Dataset', 'Metrics'):
                if not result.get(key):
                    bad.append(f'{name}: a result without {key}')
    configs = {
        osp.relpath(p, REPO_ROOT)
        for p in glob.glob(
            osp.join(REPO_ROOT, 'configs', 'dmformer', '**', '*.py'),
            recursive=True)
    }
    for config in sorted(configs - listed):
        bad.append(f'{config} is not in {METAFILE}')
    assert not bad, '\n'.join(bad)
