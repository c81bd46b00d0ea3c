"""What every suite shares: the target and secret options, the security glue, the install preamble (``suite``),
prompt sets, the tokenizer."""
