"""Multi-turn conversations: the history a User keeps and sends again, growing turn by turn.

Turn k sends every earlier question and answer, then the new question, so the prompt grows with each turn
and a server's prefix cache (which keeps the KV of what it has seen) can skip the part it has already
computed. After a successful answer the question and the answer join the history; a failed turn leaves
the history as it was (the question is not repeated) but still counts as a turn, so a conversation always
ends after its turns.

The answer kept is the text the server sent when the call returned it (non-streamed calls); a streamed
call's text is not kept by the client's reader (it times tokens, it does not store them), so the history
then holds a stand-in of the same length in tokens. A server's prefix cache then still finds the earlier
prompt, not the answer itself (the built-in mock's cache behaves like a real one here).

``Conversations`` holds the conversations of a trace replay by id, bounded (least recently used forgotten).
Pure: no Locust.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

__all__ = ["Conversation", "Conversations", "Message"]

Message = dict[str, str]


@dataclass
class Conversation:
    """One conversation: its id, the history sent with every turn, turns done, the server's token count."""

    id: str
    turns: int = 0
    """Turns done (answered or failed)."""
    history: list[Message] = field(default_factory=list)
    history_tokens: int | None = 0
    """Server tokens of the history (the last turn's usage prompt + completion tokens); None when unknown."""

    def messages(self, question: str) -> list[Message]:
        """What turn ``turns + 1`` sends: the history, then ``question`` as a user message."""
        return [*self.history, {"role": "user", "content": question}]

    def answered(
        self,
        question: str,
        answer: str,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        sent_with: int | None = None,
    ) -> None:
        """A successful turn: the question and the answer join the history.

        ``sent_with``: how many history messages the turn was sent with. When other turns were answered in the
        meantime (a trace's turns can overlap), the server's count no longer covers the history: unknown.
        """
        overlapped = sent_with is not None and sent_with != len(self.history)
        self.history.append({"role": "user", "content": question})
        self.history.append({"role": "assistant", "content": answer})
        self.turns += 1
        if prompt_tokens is not None and completion_tokens is not None and not overlapped:
            self.history_tokens = prompt_tokens + completion_tokens
        else:
            self.history_tokens = None

    def failed(self) -> None:
        """A failed turn: counted, the history unchanged."""
        self.turns += 1


class Conversations:
    """Conversations by id, at most ``max_size`` (the least recently used is forgotten)."""

    def __init__(self, max_size: int = 10000) -> None:
        self.max_size = max(1, max_size)
        self._items: OrderedDict[str, Conversation] = OrderedDict()
        self.forgotten = 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, conversation_id: str) -> Conversation:
        conv = self._items.get(conversation_id)
        if conv is None:
            conv = self._items[conversation_id] = Conversation(conversation_id)
            while len(self._items) > self.max_size:
                self._items.popitem(last=False)
                self.forgotten += 1
        else:
            self._items.move_to_end(conversation_id)
        return conv
