# bash completion for mipkey (installed by scripts/install.sh). The program completes itself: System.CommandLine's
# [suggest:POSITION] directive lists the verbs, options and option values that fit the line, offline; bash keeps
# those starting with the word under the cursor.
_mipkey() {
  local IFS=$'\n' cur="${COMP_WORDS[COMP_CWORD]}" suggestions
  suggestions=$("${COMP_WORDS[0]}" "[suggest:${COMP_POINT}]" "${COMP_LINE}" 2>/dev/null) || return 0
  COMPREPLY=($(compgen -W "$suggestions" -- "$cur"))
}
complete -o bashdefault -o default -F _mipkey mipkey
