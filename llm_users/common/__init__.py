"""What every suite shares: the target and secret options, the security glue, prompt sets, the tokenizer."""
