"""`vetted chat` and `vetted chats`: chatting from a terminal over the same core.

A chat's messages are printed as written (people and models write newlines); one-line
places (titles, lists, errors) go through `textsafe.one_line`."""

from __future__ import annotations

import json
import signal
import sys
import threading

from vetted.textsafe import multi_line, one_line


def add_parsers(sub) -> None:
    c = sub.add_parser("chat", help="chat with an installed model (interactive, or one-shot with --prompt)")
    c.add_argument("model_id")
    c.add_argument("--prompt", help="one-shot: send this message, print the reply, exit")
    c.add_argument("--json", action="store_true", help="with --prompt: print a JSON object")
    c.add_argument("--system", default="", help="system prompt for a new chat")
    c.add_argument("--continue", dest="conversation", type=int, help="continue chat ID")
    for name, typ in (("temperature", float), ("top-p", float), ("top-k", int), ("repeat-penalty", float),
                      ("max-tokens", int), ("ctx", int), ("seed", int), ("threads", int)):
        c.add_argument(f"--{name}", type=typ)
    c.set_defaults(func=cmd_chat)

    cs = sub.add_parser("chats", help="saved chats: list, show, export, search")
    cs.add_argument("action", nargs="?", choices=["list", "export", "search", "show", "delete", "rename"],
                    default="list")
    cs.add_argument("args", nargs="*")
    cs.add_argument("--format", choices=["md", "json"], default="md")
    cs.add_argument("--json", action="store_true")
    cs.set_defaults(func=cmd_chats)


def _params(args) -> dict:
    mapping = {"temperature": "temperature", "top_p": "top_p", "top_k": "top_k", "repeat_penalty": "repeat_penalty",
               "max_tokens": "max_tokens", "ctx": "n_ctx", "seed": "seed", "threads": "n_threads"}
    return {dst: getattr(args, src) for src, dst in mapping.items() if getattr(args, src) is not None}


def cmd_chat(app, args) -> int:
    session = app.chat_session()
    chats = session.chats
    try:
        if args.conversation:
            conv_id = args.conversation
            chats.update(conv_id, model_id=args.model_id, params=_params(args))
        else:
            title = (args.prompt or "Chat")[:60]
            conv_id = chats.create(args.model_id, title, args.system, _params(args))
        if args.prompt is not None:
            return _one_shot(session, conv_id, args)
        return _interactive(session, conv_id, args)
    finally:
        session.close()


def _one_shot(session, conv_id: int, args) -> int:
    stream = None if args.json else (lambda t: (sys.stdout.write(multi_line(t)), sys.stdout.flush()))
    result = session.send(conv_id, args.prompt, stream)
    if args.json:
        print(json.dumps({"conversation_id": conv_id, "reply": result.message.content,
                          "status": result.message.status, "usage": result.usage, "timings": result.timings}))
    else:
        print()
    return 0


def _interactive(session, conv_id: int, args) -> int:
    print(f"chat {conv_id} with {args.model_id}. Ctrl-C stops a reply; Ctrl-D (or /exit) quits.", file=sys.stderr)
    while True:
        try:
            text = input("you> ")
        except (EOFError, KeyboardInterrupt):
            print(file=sys.stderr)
            return 0
        if text.strip() in ("/exit", "/quit"):
            return 0
        if not text.strip():
            continue
        done = threading.Event()
        old = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, lambda *_: session.stop())  # Ctrl-C stops the reply, not the app
        try:
            sys.stdout.write("model> ")
            result = session.send(conv_id, text, lambda t: (sys.stdout.write(multi_line(t)), sys.stdout.flush()))
            print()
            if result.message.status == "stopped":
                print("(stopped)", file=sys.stderr)
            if result.dropped_turns:
                print(f"(left out {result.dropped_turns} oldest message(s) to fit the context)", file=sys.stderr)
        except Exception as exc:
            from vetted.errors import VettedError

            if not isinstance(exc, VettedError):
                raise
            print(f"\nerror: {one_line(exc.line())}", file=sys.stderr)
        finally:
            signal.signal(signal.SIGINT, old)
            done.set()


def cmd_chats(app, args) -> int:
    from vetted.errors import InputError

    chats = app.chats
    if args.action == "list":
        convs = chats.list()
        if args.json:
            print(json.dumps([{"id": c.id, "title": c.title, "model_id": c.model_id, "updated_at": c.updated_at}
                              for c in convs], indent=2))
        else:
            for c in convs:
                print(f"{c.id:>5}  {c.updated_at}  {one_line(c.model_id or '-'):<30} {one_line(c.title)}")
            if not convs:
                print("no chats yet; start one with `vetted chat MODEL_ID`")
        return 0
    if not args.args:
        raise InputError(f"chats {args.action}", "needs an argument")
    if args.action == "search":
        for conv, msg in chats.search(" ".join(args.args)):
            where = f"{msg.role}: {one_line(repr(msg.content[:80]))}" if msg else "(title)"
            print(f"{conv.id:>5}  {one_line(conv.title)[:40]:<40} {where}")
        return 0
    try:
        conv_id = int(args.args[0])
    except ValueError:
        raise InputError(f"chats {args.action}", f"{args.args[0]!r} is not a chat id") from None
    if args.action == "delete":
        chats.delete(conv_id)
        print(f"deleted chat {conv_id}")
    elif args.action == "rename":
        chats.rename(conv_id, " ".join(args.args[1:]) or "Chat")
        print(f"renamed chat {conv_id}")
    elif args.format == "json" or args.json:
        print(app.export_chat(conv_id, "json"))  # the same export the app's Export… writes
    elif args.action == "show":
        print(_show(chats.get(conv_id)))
    else:  # an export is data: byte-exact into a file or a pipe, escaped on a terminal
        text = app.export_chat(conv_id, "md")
        print(multi_line(text) if sys.stdout.isatty() else text)
    return 0


def _show(conv) -> str:
    """`chats show`: the Markdown export's layout for a terminal, its one-line fields
    (title, model, system prompt, status reason) escaped; the messages keep their line
    breaks but no control sequence reaches the terminal (a model's reply is untrusted)."""
    lines = [f"# {one_line(conv.title)}", "", f"- model: {one_line(conv.model_id or '(none)')}",
             f"- created: {conv.created_at}"]
    if conv.system_prompt:
        lines += [f"- system prompt: {one_line(conv.system_prompt)}"]
    lines.append("")
    for m in conv.messages:
        who = "You" if m.role == "user" else "Assistant"
        note = "" if m.status == "complete" else f" _({m.status}{': ' + one_line(m.reason) if m.reason else ''})_"
        lines += [f"## {who}{note}", "", multi_line(m.content), ""]
    return "\n".join(lines)
