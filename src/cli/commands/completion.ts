/**
 * `podlog completion bash|zsh|fish`: a script that completes verbs, sub-commands and flags (from the
 * same tables help and the parsers use, written into the script) and, by asking podlog itself as the
 * user types, the UUIDs of this host's pods and the names of the images in the store.
 * `podlog completion --list pods|images` is what the scripts ask: it reads the log and writes nothing.
 */
import { ownsPod } from '../../engine/hosts.js';
import { POD_LIST, type PodListRow } from '../../engine/pod-list.js';
import { POD_STREAM_PREFIX, uuidOfStream } from '../../engine/streams.js';
import { PodlogError } from '../../errors.js';
import { openStore } from '../../store/open.js';
import { readBatches } from '../../api/subscribe.js';
import { str, out, type Command, type Invocation } from '../command.js';
import { COMMANDS } from './index.js';
import { flagGroupsOf, GLOBAL_OPTIONS, GLOBAL_VALUE_FLAGS } from '../help.js';
import { factsOf } from '../event-selection.js';
import { withImageStore } from './image.js';

/** What the script needs to know of each verb. */
interface VerbSpec {
  name: string;
  summary: string;
  flags: Array<{ name: string; takesValue: boolean; description: string }>;
  subcommands: string[];
  operand: 'pod' | 'image' | undefined;
}

const verbSpecs = (): Promise<VerbSpec[]> =>
  Promise.all(
    COMMANDS.map(async (entry) => {
      const command = await entry.load();
      const options = Object.assign({}, ...flagGroupsOf(command).map((g) => g.options)) as Command['options'];
      return {
        name: entry.name,
        summary: entry.summary,
        flags: Object.entries(options).map(([name, f]) => ({ name, takesValue: f.type === 'string', description: f.description })),
        subcommands: command.subcommands ?? [],
        operand: command.operand,
      };
    }),
  );

/**
 * This host's pods that still exist: the pod list as last saved, brought forward by the pods prepared
 * and deleted since (no fold: completion runs on every TAB, and must not write the list it reads).
 */
const podUuids = async (inv: Invocation): Promise<string[]> => {
  const store = await openStore(inv.dir, { access: 'inspect', url: inv.store });
  try {
    const saved = await store.loadProjection<PodListRow>(POD_LIST);
    const uuids = new Set([...saved.rows.values()].filter((r) => ownsPod(inv.hostId, r.context)).map((r) => r.uuid));
    const types = ['PrepareRequested', 'PodDeleted', 'PodCompacted'];
    for await (const batch of readBatches(store, { after: saved.checkpoint, streamPrefix: POD_STREAM_PREFIX, types, stopAtHead: true })) {
      for (const e of batch) {
        const uuid = uuidOfStream(e.stream);
        if (e.type !== 'PrepareRequested') uuids.delete(uuid);
        else if (ownsPod(inv.hostId, factsOf(e))) uuids.add(uuid);
      }
    }
    return [...uuids];
  } finally {
    await store.close();
  }
};

const imageNames = (inv: Invocation): Promise<string[]> =>
  withImageStore(inv, async (images) => [...new Set([...(await images.index()).images.values()].flatMap((i) => i.names.map((n) => n.name)))], 'inspect');

/** A word as a single-quoted shell word (fish and bash read them alike). */
const quoted = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** bash (zsh loads it through bashcompinit): the tables as case arms, the dynamic words from podlog. */
const bashScript = (verbs: VerbSpec[]): string => {
  const arm = (pick: (v: VerbSpec) => string): string => verbs.map((v) => `    ${v.name}) echo ${quoted(pick(v))} ;;`).join('\n');
  const globals = Object.keys(GLOBAL_OPTIONS).map((n) => `--${n}`).join(' ');
  return `# podlog completion for bash: source <(podlog completion bash)
_podlog_flags() {
  case "$1" in
${arm((v) => v.flags.map((f) => `--${f.name}${f.takesValue ? '=' : ''}`).join(' '))}
  esac
}
_podlog_subcommands() {
  case "$1" in
${arm((v) => v.subcommands.join(' '))}
  esac
}
_podlog_operand() {
  case "$1" in
${arm((v) => v.operand ?? '')}
  esac
}
_podlog() {
  # zsh runs this through bashcompinit: arrays from 0, as in bash.
  [[ -n \${ZSH_VERSION-} ]] && setopt local_options ksh_arrays
  # bash splits words at = and : (--dir=/x, docker://h/n:tag); they are put back together first.
  local -a _pl_words=()
  local i w _pl_cword=0 verb='' verb_at=0
  for ((i = 0; i < \${#COMP_WORDS[@]}; i++)); do
    w=\${COMP_WORDS[i]}
    if ((i > 1)) && [[ $w == [=:] || \${_pl_words[\${#_pl_words[@]}-1]} == *[=:] ]]; then
      _pl_words[\${#_pl_words[@]}-1]+=$w
    else
      _pl_words+=("$w")
    fi
    ((i == COMP_CWORD)) && _pl_cword=$((\${#_pl_words[@]} - 1))
  done
  local cur=\${_pl_words[_pl_cword]}
  _podlog_reply
  # bash replaces only its own current word (what follows the last = or :): the replies are cut alike.
  local before=\${cur%"\${COMP_WORDS[COMP_CWORD]}"}
  [[ -n $before && \${#COMPREPLY[@]} -gt 0 ]] && COMPREPLY=("\${COMPREPLY[@]#"$before"}")
}
_podlog_reply() {
  # The data dir, log and host the line names, as podlog will read them (~ and backslashes as the shell would).
  local -a where=()
  for ((i = 1; i < _pl_cword; i++)); do
    w=\${_pl_words[i]}
    case "$w" in
      ${GLOBAL_VALUE_FLAGS.join('|')}) ((i + 1 < _pl_cword)) && where+=("$w=$(_podlog_unquote "\${_pl_words[i+1]}")"); ((i++)) ;;
      ${GLOBAL_VALUE_FLAGS.map((f) => `${f}=*`).join('|')}) where+=("\${w%%=*}=$(_podlog_unquote "\${w#*=}")") ;;
      --) break ;;
      -*) ;;
      *) if [[ -z $verb ]]; then verb=$w; verb_at=$i; fi ;;
    esac
  done
  # The value of a flag that takes one (--dir DIR, --uuid-file FILE): bash's file names.
  local prev=\${_pl_words[_pl_cword-1]}
  [[ " ${GLOBAL_VALUE_FLAGS.join(' ')} " == *" $prev "* ]] && return
  [[ -n $verb && $prev == --* && " $(_podlog_flags "$verb") " == *" $prev= "* ]] && return
  if [[ -z $verb ]]; then
    if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W ${quoted(globals)} -- "$cur"))
    else COMPREPLY=($(compgen -W ${quoted(verbs.map((v) => v.name).join(' '))} -- "$cur")); fi
    return
  fi
  if [[ $cur == -* ]]; then
    # A value typed after = is bash's current word: it gets file names (the default) when nothing else fits.
    [[ $cur == *=* ]] && return
    compopt -o nospace 2>/dev/null
    COMPREPLY=($(compgen -W "$(_podlog_flags "$verb") ${globals.split(' ').map((g) => `${g}${GLOBAL_VALUE_FLAGS.includes(g) ? '=' : ''}`).join(' ')}" -- "$cur"))
    # A flag that takes no value is complete: it gets its space back.
    [[ \${#COMPREPLY[@]} -eq 1 && \${COMPREPLY[0]} != *= ]] && compopt +o nospace 2>/dev/null
    return
  fi
  local subs
  subs=$(_podlog_subcommands "$verb")
  if [[ -n $subs && $_pl_cword -eq $((verb_at + 1)) ]]; then
    COMPREPLY=($(compgen -W "$subs" -- "$cur"))
    return
  fi
  # UUIDs and image names hold no spaces or quotes (appc names and docker references): word splitting keeps them whole.
  case "$(_podlog_operand "$verb")" in
    pod) COMPREPLY=($(compgen -W "$(podlog "\${where[@]}" completion --list pods 2>/dev/null)" -- "$cur")) ;;
    image) COMPREPLY=($(compgen -W "$(podlog "\${where[@]}" completion --list images 2>/dev/null)" -- "$cur")) ;;
  esac
  # Nothing else: bash's own file name completion (-o default), which handles spaces and directories.
}
_podlog_unquote() {
  local v=$1
  v=\${v/#\\~/$HOME}
  v=\${v//\\\\/}
  v=\${v#[\\'\\"]}
  printf '%s' "\${v%[\\'\\"]}"
}
complete -o bashdefault -o default -F _podlog podlog
`;
};

/** zsh reads bash's completion functions through bashcompinit, which ships with zsh. */
const zshScript = (verbs: VerbSpec[]): string =>
  `# podlog completion for zsh: source <(podlog completion zsh)
(( $+functions[compdef] )) || { autoload -U +X compinit && compinit }
autoload -U +X bashcompinit && bashcompinit
${bashScript(verbs).replace(/^# podlog completion for bash.*\n/, '')}`;

/**
 * fish: one `complete` line per verb, sub-command and flag. The verb is found as podlog finds it (the
 * first word that is not a flag or a global flag's value), and --dir, --store and --host-id typed on the
 * line reach `completion --list`. File names are fish's default wherever no list applies.
 */
const fishScript = (verbs: VerbSpec[]): string => {
  const values = GLOBAL_VALUE_FLAGS.join(' ');
  const lines = [
    '# podlog completion for fish: podlog completion fish | source',
    'function __podlog_verb',
    '    set -l tokens (commandline -opc)[2..-1]',
    '    while set -q tokens[1]',
    '        switch $tokens[1]',
    `            case ${values}`,
    '                set -e tokens[1]',
    "            case '-*'",
    '            case \'*\'',
    '                echo $tokens[1]',
    '                return',
    '        end',
    '        set -e tokens[1]',
    '    end',
    'end',
    'function __podlog_where',
    '    set -l tokens (commandline -opc)[2..-1]',
    '    while set -q tokens[1]',
    '        switch $tokens[1]',
    `            case ${values}`,
    '                set -q tokens[2]; and echo $tokens[1]=$tokens[2]',
    '                set -e tokens[1]',
    `            case ${GLOBAL_VALUE_FLAGS.map((f) => `'${f}=*'`).join(' ')}`,
    '                echo $tokens[1]',
    '        end',
    '        set -e tokens[1]',
    '    end',
    'end',
  ];
  for (const [name, f] of Object.entries(GLOBAL_OPTIONS)) lines.push(`complete -c podlog -l ${name}${f.type === 'string' ? ' -r' : ''} -d ${quoted(f.description)}`);
  for (const v of verbs) {
    lines.push(`complete -c podlog -n 'test -z "$(__podlog_verb)"' -f -a ${v.name} -d ${quoted(v.summary)}`);
    const on = `-n ${quoted(`test "$(__podlog_verb)" = ${v.name}`)}`;
    for (const s of v.subcommands) lines.push(`complete -c podlog ${on} -f -a ${s}`);
    for (const f of v.flags) lines.push(`complete -c podlog ${on} -l ${f.name}${f.takesValue ? ' -r' : ''} -d ${quoted(f.description)}`);
    if (v.operand !== undefined) lines.push(`complete -c podlog ${on} -f -a ${quoted(`(podlog (__podlog_where) completion --list ${v.operand}s 2>/dev/null)`)}`);
  }
  return `${lines.join('\n')}\n`;
};

const SCRIPTS = { bash: bashScript, zsh: zshScript, fish: fishScript };
const LISTS = { pods: podUuids, images: imageNames };

export const completion: Command = {
  usage: 'podlog completion bash|zsh|fish\npodlog completion --list pods|images',
  options: {
    list: { type: 'string', value: 'pods|images', description: "print this host's pod UUIDs or the store's image names, one a line (what the scripts ask)" },
  },
  examples: ['source <(podlog completion bash)', 'podlog completion fish > ~/.config/fish/completions/podlog.fish'],
  subcommands: Object.keys(SCRIPTS),
  run: async (inv) => {
    const list = str(inv.values, 'list');
    const [shell, ...rest] = inv.positionals;
    if (list !== undefined) {
      if (shell !== undefined) throw new PodlogError('EUSAGE', 'completion: --list takes no shell');
      if (!Object.hasOwn(LISTS, list)) throw new PodlogError('EUSAGE', `completion: --list ${JSON.stringify(list)}: pods or images`);
      const words = await LISTS[list as keyof typeof LISTS](inv);
      if (words.length > 0) out(words.join('\n'));
      return 0;
    }
    if (shell === undefined || rest.length > 0 || !Object.hasOwn(SCRIPTS, shell)) {
      const problem = shell === undefined ? 'name a shell' : rest.length > 0 ? 'takes one shell' : `unknown shell ${JSON.stringify(shell)}`;
      throw new PodlogError('EUSAGE', `completion: ${problem} (bash, zsh or fish)`);
    }
    out(SCRIPTS[shell as keyof typeof SCRIPTS](await verbSpecs()));
    return 0;
  },
};
