// A Rust program (tests/monitor/test_rust.c): std::thread, channels, locks, scoped threads,
// thread-locals, a panic caught at join, and std::process::Command, from the main thread and
// from several at once. The same output natively and under sandbox-run.
//   rustwork threads | spawn | echo ARGS... | exit N
use std::cell::Cell;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Barrier, Condvar, Mutex, RwLock};
use std::thread;
use std::time::Duration;

thread_local!(static TL: Cell<u32> = Cell::new(0));

fn threads() {
    let hs: Vec<_> = (0..8u64)
        .map(|i| thread::spawn(move || (1..=1000u64).map(|x| x * i).sum::<u64>()))
        .collect();
    let total: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
    println!("join: {}", total);

    // A pipeline: an unbounded channel into a bounded one, summed at the end.
    let (tx, rx) = mpsc::channel::<u64>();
    let (tx2, rx2) = mpsc::sync_channel::<u64>(4);
    let a = thread::spawn(move || {
        for v in rx {
            tx2.send(v * 3).unwrap();
        }
    });
    let b = thread::spawn(move || rx2.iter().sum::<u64>());
    for i in 0..10000 {
        tx.send(i).unwrap();
    }
    drop(tx);
    a.join().unwrap();
    println!("channels: {}", b.join().unwrap());

    let pair = Arc::new((Mutex::new(0u32), Condvar::new()));
    let ws: Vec<_> = (0..4)
        .map(|_| {
            let p = pair.clone();
            thread::spawn(move || {
                let (m, c) = &*p;
                let mut g = m.lock().unwrap();
                while *g < 100 {
                    g = c.wait(g).unwrap();
                }
            })
        })
        .collect();
    for _ in 0..100 {
        let (m, c) = &*pair;
        *m.lock().unwrap() += 1;
        c.notify_all();
    }
    for w in ws {
        w.join().unwrap();
    }
    println!("condvar: {}", *pair.0.lock().unwrap());

    let counter = AtomicU64::new(0);
    let data = RwLock::new(vec![1u64; 1000]);
    let barrier = Barrier::new(4);
    thread::scope(|s| {
        for i in 0..4 {
            let (counter, data, barrier) = (&counter, &data, &barrier);
            s.spawn(move || {
                barrier.wait();
                for _ in 0..10000 {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
                if i == 0 {
                    data.write().unwrap()[0] = 5;
                }
                barrier.wait();
                let _ = data.read().unwrap()[0];
            });
        }
    });
    println!("scoped: {} {}", counter.load(Ordering::Relaxed), data.read().unwrap()[0]);

    // The panic's message goes to stderr; the join says it panicked.
    let r = thread::spawn(|| -> u32 { panic!("boom") }).join();
    println!("panic caught: {}", r.is_err());

    let h = thread::Builder::new()
        .name("worker-7".into())
        .spawn(|| {
            thread::park();
            thread::current().name().unwrap().to_string()
        })
        .unwrap();
    thread::sleep(Duration::from_millis(20));
    h.thread().unpark();
    println!("named: {}", h.join().unwrap());

    TL.with(|t| t.set(9));
    let other = thread::spawn(|| TL.with(|t| t.get())).join().unwrap();
    println!("thread_local: {} {}", TL.with(|t| t.get()), other);
}

fn spawn(me: &str) {
    let out = Command::new(me).args(["echo", "from", "child"]).output().unwrap();
    println!("output: {:?} {}", String::from_utf8_lossy(&out.stdout), out.status);
    let st = Command::new(me).args(["exit", "3"]).status().unwrap();
    println!("status: {:?}", st.code());
    // std spawns through glibc's posix_spawn, whose child reports a failed execve in the
    // memory it shares with its parent.
    println!("missing: {}", Command::new("/nonexistent/prog").status().is_err());
    // And from a second thread: the parent is a process of threads then.
    let m = thread::spawn(|| Command::new("/nonexistent/prog").status().is_err());
    println!("missing from a thread: {}", m.join().unwrap());
    let hs: Vec<_> = (0..3)
        .map(|i| {
            let me = me.to_string();
            thread::spawn(move || {
                let o = Command::new(&me).args(["echo", &i.to_string()]).output().unwrap();
                String::from_utf8_lossy(&o.stdout).trim().to_string()
            })
        })
        .collect();
    let v: Vec<String> = hs.into_iter().map(|h| h.join().unwrap()).collect();
    println!("from threads: {:?}", v);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(|s| s.as_str()).unwrap_or("") {
        "threads" => threads(),
        "spawn" => spawn(&args[0]),
        "echo" => println!("{}", args[2..].join(" ")),
        "exit" => std::process::exit(args.get(2).and_then(|n| n.parse().ok()).unwrap_or(0)),
        _ => {
            eprintln!("usage: rustwork threads | spawn | echo ARGS... | exit N");
            std::process::exit(2);
        }
    }
}
